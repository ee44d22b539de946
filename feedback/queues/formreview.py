"""Submitting a review made on the review page: the run's Form tab (the feedback app's
JSON form) and the rubric beside it, turned into the rubric's verdicts and, with one
reviewer per item, into ordinary corrections of the run.

Imports feedback's JSON form and services and this package's services; the review
page (views) is its only caller.
"""

from __future__ import annotations

from django.db import transaction

from agents.models import Membership
from feedback import jsonform, pointer
from feedback.jsonform import Change
from feedback.services import field_corrections_create

from . import rubric
from .models import Review
from .services import QueueError, review_submit


def form_verdicts(
    *, field_list: list[str], root, changes: list[Change], marks: dict[str, str], typed: dict
) -> tuple[dict, dict[str, str]]:
    """The rubric's verdicts from the review page's Form tab: a field is corrected when
    the reviewer changed something within it (its value: what the form holds there
    now); a field marked "needs fix" must have been changed. `typed`: values typed in
    the rubric for fields the form does not show (missing from the output)."""
    fields, errors = {}, {}
    for ptr in field_list:
        touched = any(pointer.is_within(c.path, ptr) for c in changes)
        node = jsonform.find(root, ptr) if touched and root is not None else None
        value = jsonform.node_value(node) if node is not None else pointer.MISSING
        if value is not pointer.MISSING:
            fields[ptr] = {"verdict": "corrected", "value": value}
        elif ptr in typed:
            fields[ptr] = {"verdict": "corrected", "value": typed[ptr]}
        elif marks.get(ptr) == "corrected":
            errors[f"field:{ptr}"] = "Marked as needing a fix: change its value in the Form."
        else:
            fields[ptr] = {"verdict": "ok"}
    return fields, errors


def review_submit_form(
    *,
    review: Review,
    membership: Membership,
    root,
    changes: list[Change],
    marks: dict[str, str],
    typed: dict,
    answers: dict,
    comment: str = "",
    locate=None,
) -> Review:
    """Submit a review made on the review page: the run's Form tab (the feedback app's
    JSON form) and the rubric beside it.

    With one reviewer per item the Form's changes are saved at once as normal
    corrections (kept, diffed, counted by per-field accuracy). With several, each
    reviewer's values stay in their review until the reviewers agree or an admin
    resolves, so nobody sees another's answer first; the changes must then lie within
    the rubric's fields, the only ones compared. A review that changes nothing is a
    review all the same: every field "left unchanged"."""
    queue = review.item.queue
    execution = review.item.execution
    field_list = rubric.review_fields(queue.fields, execution.output)
    fields, errors = form_verdicts(
        field_list=field_list, root=root, changes=changes, marks=marks, typed=typed
    )
    held = queue.reviewers_per_item > 1
    if held:
        for c in changes:
            if not any(pointer.is_within(c.path, ptr) for ptr in field_list):
                errors.setdefault(
                    f"field:{c.field or c.path}",
                    f"This queue has {queue.reviewers_per_item} reviewers per item, so only "
                    "the rubric's fields are corrected here; correct others on the run's page.",
                )
    if errors:
        raise QueueError(errors)
    with transaction.atomic():
        if changes and not held:
            # Raises the feedback service's StaleBase / FieldErrors: the view shows them
            # on the form's fields, as the run's own Form tab does.
            field_corrections_create(
                execution=execution,
                membership=membership,
                changes=changes,
                comment=comment or "Review queue",
                locate=locate,
            )
        return review_submit(review=review, membership=membership, fields=fields, answers=answers)
