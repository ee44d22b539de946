"""Applying rules to runs: match, sample, act, log, at most once per rule and run."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.http import QueryDict

from executions.control import outbound
from executions.control.dispatch import SIGNATURE_HEADER, sign
from executions.models import TERMINAL_STATUSES, Execution, Status
from executions.table.selectors import execution_filterset
from executions.tags.services import tags_add
from feedback.models import ExecutionNote
from feedback.queues.services import items_add_ids

from .models import Rule, RuleRun, Trigger

FAILED_STATUSES = frozenset({Status.FAILED, Status.TIMED_OUT, Status.TERMINATED})
WEBHOOK_TIMEOUT = 10
BUCKETS = 10_000


def trigger_for_status(status: str) -> str | None:
    if status == Status.COMPLETED:
        return Trigger.FINISHED
    if status in FAILED_STATUSES:
        return Trigger.FAILED
    return None


def sampled(rule_id: int, execution_id, percent: Decimal | float) -> bool:
    """The same answer every time for a rule and a run (a retry or a backfill never
    changes its mind), spread evenly: a hash of both, in 10,000 buckets."""
    digest = hashlib.sha256(f"{rule_id}:{execution_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % BUCKETS
    return bucket < Decimal(str(percent)) * BUCKETS / 100


def matches(rule: Rule, execution: Execution) -> tuple[bool, dict]:
    """(whether the saved view's filters match the run, their errors). A filter that no
    longer validates (an agent renamed away) matches nothing: the table would drop it
    and match everything, which a rule must never do."""
    if rule.saved_view is None:
        return True, {}
    params = QueryDict(rule.saved_view.query or "")
    filterset = execution_filterset(workspace=rule.workspace, params=params)
    if not filterset.is_valid():
        return False, {k: " ".join(v) for k, v in filterset.errors.items()}
    return filterset.qs.filter(pk=execution.pk).exists(), {}


def _webhook(rule: Rule, execution: Execution) -> dict:
    body = json.dumps(
        {
            "event": "rule.matched",
            "rule": {"id": rule.pk, "name": rule.name, "trigger": rule.trigger},
            "execution": {
                "id": str(execution.pk),
                "agent": execution.agent_name,
                "version": execution.version_name,
                "status": execution.status,
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Runboard-Rules/1"}
    if rule.webhook_secret:
        headers[SIGNATURE_HEADER] = sign(body, rule.webhook_secret)
    outcome = outbound.post(rule.webhook_url, body, headers, timeout=WEBHOOK_TIMEOUT)
    return {"status": outcome.status, "error": outcome.error}


def rule_apply(rule: Rule, execution: Execution, *, backfill: bool = False) -> RuleRun | None:
    """Decide and act once: the RuleRun row is claimed first (unique per rule and run),
    so a task run twice, or a backfill over runs already seen, does nothing again.
    Returns None when the rule had already decided on this run."""
    try:
        with transaction.atomic():
            run = RuleRun.objects.create(
                rule=rule, execution=execution, outcome=RuleRun.Outcome.APPLIED, backfill=backfill
            )
    except IntegrityError:
        return None
    detail: dict = {}
    matched, errors = matches(rule, execution)
    if not matched:
        run.outcome = RuleRun.Outcome.NOT_MATCHED
        if errors:
            detail["filter_errors"] = errors
    elif not sampled(rule.pk, execution.pk, rule.sample_percent):
        run.outcome = RuleRun.Outcome.NOT_SAMPLED
    else:
        if rule.queue_id:
            detail["queue_added"] = items_add_ids(queue=rule.queue, ids=[execution.pk])
        if rule.tags:
            detail["tags_added"] = tags_add(
                workspace=rule.workspace, executions=[execution.pk], names=rule.tags
            )
        if rule.webhook_url:
            detail["webhook"] = _webhook(rule, execution)
            ok = (
                detail["webhook"]["status"] is not None and 200 <= detail["webhook"]["status"] < 300
            )
            if not ok:
                run.outcome = RuleRun.Outcome.FAILED
    run.detail = detail
    run.save(update_fields=["outcome", "detail"])
    return run


def rule_save(*, form, workspace, user) -> Rule:
    """Save the dashboard's rule form (already valid) in this workspace."""
    rule = form.save(commit=False)
    rule.workspace = workspace
    if rule.created_by_id is None:
        rule.created_by = user
    with transaction.atomic():
        rule.save()
    return rule


def rule_backfill_enqueue(*, rule: Rule) -> None:
    """Queue the backfill once the request's transaction commits: a past run is
    decided at most once, so queuing it twice does no harm."""
    from .tasks import backfill

    transaction.on_commit(lambda: backfill.enqueue(rule.pk))


def rules_for(workspace_id, trigger: str):
    return Rule.objects.filter(
        workspace_id=workspace_id, trigger=trigger, enabled=True
    ).select_related("workspace", "saved_view", "queue")


def rules_run(execution_id, trigger: str) -> list[RuleRun]:
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is None:
        return []
    done = []
    for rule in rules_for(execution.workspace_id, trigger):
        run = rule_apply(rule, execution)
        if run is not None:
            done.append(run)
    return done


def backfill_candidates(rule: Rule):
    """The past runs the rule's trigger would have fired on."""
    runs = Execution.objects.filter(workspace=rule.workspace)
    if rule.trigger == Trigger.FINISHED:
        runs = runs.filter(status=Status.COMPLETED)
    elif rule.trigger == Trigger.FAILED:
        runs = runs.filter(status__in=FAILED_STATUSES)
    else:
        runs = runs.filter(
            pk__in=ExecutionNote.objects.filter(
                workspace=rule.workspace, rating=ExecutionNote.Rating.DOWN
            ).values("execution_id")
        )
    return runs.exclude(pk__in=RuleRun.objects.filter(rule=rule).values("execution_id"))


def rule_backfill(rule: Rule, *, limit: int | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    runs = backfill_candidates(rule).order_by("created_at", "pk")
    if limit:
        runs = runs[:limit]
    for execution in runs.iterator(chunk_size=500):
        run = rule_apply(rule, execution, backfill=True)
        if run is not None:
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
    return counts


__all__ = [
    "TERMINAL_STATUSES",
    "rule_apply",
    "rule_backfill",
    "rule_backfill_enqueue",
    "rule_save",
    "rules_run",
    "sampled",
]
