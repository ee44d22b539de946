"""Reads of reviewer feedback, always scoped to one workspace."""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from agents.models import Agent, AgentVersion, Workspace
from executions.models import Execution
from executions.selectors import execution_get

from . import pointer
from .jsonform import same_value
from .models import ExecutionNote, FieldCorrection


def feedback_execution_get(*, workspace: Workspace, pk) -> Execution:
    """The execution (with its version's output schema); another workspace's is a 404."""
    return execution_get(workspace=workspace, pk=pk)


def correction_list(*, workspace: Workspace, execution: Execution) -> QuerySet[FieldCorrection]:
    return (
        FieldCorrection.objects.filter(workspace=workspace, execution=execution)
        .select_related("author")
        .order_by("created_at", "id")
    )


def note_list(*, workspace: Workspace, execution: Execution) -> QuerySet[ExecutionNote]:
    return (
        ExecutionNote.objects.filter(workspace=workspace, execution=execution)
        .select_related("author")
        .order_by("-created_at", "-id")
    )


# ---------------------------------------------------------------------------- corrected output


@dataclass
class Corrected:
    original: Any
    output: Any
    corrections: list[FieldCorrection]
    # Corrections that no longer fit the output (its shape changed after they were made).
    skipped: list[FieldCorrection] = field(default_factory=list)

    @property
    def latest_by_path(self) -> dict[str, FieldCorrection]:
        latest: dict[str, FieldCorrection] = {}
        for c in self.corrections:
            latest[c.path] = c
        return latest

    def last_touch(self, path: str) -> FieldCorrection | None:
        """The latest correction that changed this place, itself, inside or around it."""
        for c in reversed(self.corrections):
            if pointer.overlaps(c.path, path):
                return c
        return None


def _fresh(value: Any) -> Any:
    # Values are put into the document and later corrections may edit inside them:
    # each must be its own copy, or the history would change along with the output.
    if isinstance(value, dict | list):
        return copy.deepcopy(value)
    return value


def apply_correction(doc: Any, correction) -> Any:
    """One correction applied to a document in place; returns the document."""
    if correction.op == FieldCorrection.Op.REMOVE:
        return pointer.remove(doc, correction.path)
    if correction.op == FieldCorrection.Op.ADD:
        return pointer.add(doc, correction.path, _fresh(correction.value_after))
    return pointer.replace(doc, correction.path, _fresh(correction.value_after))


def corrected_output(original: Any, corrections, *, keep_original: bool = True) -> Corrected:
    """The original with every correction replayed in the order they were made.

    Replaying all of them gives each path its latest correction, and it is the only
    order that stays right when rows were added to or removed from a list (the
    indices after that point shift). The original itself is never touched, unless the
    caller says it needs no original (`keep_original=False`) and spares the copy.
    """
    corrections = list(corrections)
    doc = original
    if keep_original and isinstance(original, dict | list):
        doc = json.loads(json.dumps(original))
    skipped = []
    for c in corrections:
        try:
            doc = apply_correction(doc, c)
        except pointer.PointerError:
            skipped.append(c)
    return Corrected(original=original, output=doc, corrections=corrections, skipped=skipped)


def execution_corrected(
    *, workspace: Workspace, execution: Execution, keep_original: bool = True
) -> Corrected:
    """The corrected output. With keep_original=False the execution's own `output` is
    corrected in place, for callers that show only the corrected one."""
    return corrected_output(
        execution.output,
        correction_list(workspace=workspace, execution=execution),
        keep_original=keep_original,
    )


def correction_marks(corrected: Corrected) -> dict[str, str]:
    """Per path, a line for the form saying who corrected the field last, and from what."""
    marks = {}
    for path, c in corrected.latest_by_path.items():
        who = c.author.get_username() if c.author else "someone"
        before = "absent" if c.op == "add" and c.value_before is None else _short(c.value_before)
        marks[path] = (
            f"Corrected by {who} on {timezone.localtime(c.created_at):%Y-%m-%d %H:%M}, was {before}"
        )
    return marks


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- accuracy


@dataclass
class FieldAccuracy:
    path: str
    corrected: int
    reviewed: int

    @property
    def rate(self) -> float:
        return self.corrected / self.reviewed if self.reviewed else 0.0


@dataclass
class VersionAccuracy:
    version: AgentVersion
    reviewed: int
    fields: list[FieldAccuracy]


def field_pattern(path: str) -> str:
    """A path with list indices as "*", so /items/0/total and /items/7/total are one field."""
    return pointer.build("*" if t.isdigit() else t for t in pointer.parse(path))


def field_accuracy(*, workspace: Workspace, agent: Agent) -> list[VersionAccuracy]:
    """Per version and field: reviewed executions, those with the field corrected, the rate.

    Reviewed means an execution has any feedback (a correction or a note). A field
    counts as corrected when its corrections left it different from the original:
    a correction that was undone does not count.
    """
    reviewed_rows = (
        Execution.objects.filter(workspace=workspace, agent=agent)
        .filter(Q(correction_count__gt=0) | Q(note_count__gt=0))
        .values("agent_version")
        .annotate(n=Count("pk"))
    )
    reviewed = {r["agent_version"]: r["n"] for r in reviewed_rows}
    pairs = (
        FieldCorrection.objects.filter(workspace=workspace, execution__agent=agent)
        .values("execution_id", "execution__agent_version", "path")
        .annotate(n=Count("pk"))
    )
    touched: dict[tuple[Any, str], set] = defaultdict(set)
    twice = []
    for p in pairs:
        key = (p["execution__agent_version"], p["path"])
        touched[key].add(p["execution_id"])
        if p["n"] > 1:
            twice.append((p["execution_id"], p["path"], key))
    _drop_undone(workspace, twice, touched)
    per_version: dict[Any, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for (version_id, path), executions in touched.items():
        if executions:
            per_version[version_id][field_pattern(path)].update(executions)
    out = []
    for version in agent.versions.order_by("-created_at"):
        n = reviewed.get(version.pk, 0)
        fields = [
            FieldAccuracy(path=path, corrected=len(ex), reviewed=n)
            for path, ex in per_version.get(version.pk, {}).items()
        ]
        fields.sort(key=lambda f: (-f.rate, -f.corrected, f.path))
        out.append(VersionAccuracy(version=version, reviewed=n, fields=fields))
    return out


def _drop_undone(workspace, twice, touched) -> None:
    """Paths corrected more than once on one execution: net no change is no correction."""
    if not twice:
        return
    wanted = {(e, p) for e, p, _ in twice}
    rows = (
        FieldCorrection.objects.filter(
            workspace=workspace, execution_id__in={e for e, _, _ in twice}
        )
        .order_by("created_at", "id")
        .values_list("execution_id", "path", "op", "value_before", "value_after")
    )
    first: dict[tuple, tuple] = {}
    last: dict[tuple, tuple] = {}
    for execution_id, path, op, before, after in rows:
        if (execution_id, path) not in wanted:
            continue
        first.setdefault((execution_id, path), (op, before))
        last[(execution_id, path)] = (op, after)
    for execution_id, path, key in twice:
        first_op, before = first[(execution_id, path)]
        last_op, after = last[(execution_id, path)]
        existed_before = first_op != FieldCorrection.Op.ADD
        exists_after = last_op != FieldCorrection.Op.REMOVE
        if existed_before == exists_after and (not exists_after or same_value(before, after)):
            touched[key].discard(execution_id)


# ---------------------------------------------------------------------------- export


def corrected_export_rows(*, workspace: Workspace, version: AgentVersion, include_reviewed=False):
    """(input, original output, corrected output) of a version's corrected executions.

    Streams in chunks, each chunk fetching its corrections in one query, so a large
    evaluation set never sits in memory whole.
    """
    executions = Execution.objects.filter(workspace=workspace, agent_version=version)
    if include_reviewed:
        executions = executions.filter(Q(correction_count__gt=0) | Q(note_count__gt=0))
    else:
        executions = executions.filter(correction_count__gt=0)
    executions = executions.order_by("created_at", "id").only(
        "id", "input", "output", "created_at", "workspace_id"
    )
    from django.db.models import Prefetch

    executions = executions.prefetch_related(
        Prefetch("corrections", queryset=FieldCorrection.objects.order_by("created_at", "id"))
    )
    for execution in executions.iterator(chunk_size=200):
        corrected = corrected_output(execution.output, execution.corrections.all())
        yield {
            "execution_id": str(execution.pk),
            "created_at": execution.created_at.isoformat(),
            "input": execution.input,
            "original_output": execution.output,
            "corrected_output": corrected.output,
            "corrections": len(corrected.corrections),
        }


def agent_version_get(*, workspace: Workspace, agent: Agent, pk) -> AgentVersion:
    from django.http import Http404

    version = AgentVersion.objects.filter(agent=agent, agent__workspace=workspace, pk=pk).first()
    if version is None:
        raise Http404("No such version of this agent.")
    return version
