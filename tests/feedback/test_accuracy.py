"""Per-field accuracy on known data."""

import pytest

from feedback.selectors import field_accuracy, field_pattern

from ..factories import (
    AgentVersionFactory,
    ExecutionFactory,
    ExecutionNoteFactory,
    FieldCorrectionFactory,
)

pytestmark = pytest.mark.django_db


def reviewed(version, corrections=(), notes=0):
    """An execution with the given corrections [(path, before, after)] and notes."""
    execution = ExecutionFactory(agent_version=version, output={"total": 1, "items": []})
    for path, before, after in corrections:
        FieldCorrectionFactory(
            execution=execution, path=path, value_before=before, value_after=after
        )
    for _ in range(notes):
        ExecutionNoteFactory(execution=execution)
    execution.correction_count = len(corrections)
    execution.note_count = notes
    execution.save(update_fields=["correction_count", "note_count"])
    return execution


def test_field_pattern_merges_list_items():
    assert field_pattern("/items/3/total") == "/items/*/total"
    assert field_pattern("/a~1b/0") == "/a~1b/*"


def test_rates_per_version_and_field_worst_first(agent_version):
    v1 = agent_version
    agent = v1.agent
    v2 = AgentVersionFactory(agent=agent, version="v2")
    # v1: four reviewed executions (three corrected, one only rated), one not reviewed.
    reviewed(v1, [("/total", 1, 2), ("/items/0/sku", "a", "b"), ("/items/1/sku", "c", "d")])
    reviewed(v1, [("/total", 1, 3)])
    reviewed(v1, [("/items/2/sku", "x", "y")])
    reviewed(v1, notes=1)
    ExecutionFactory(agent_version=v1)
    # v2: one reviewed, with /total corrected and then undone.
    reviewed(v2, [("/total", 1, 5), ("/total", 5, 1)])

    by_version = {va.version: va for va in field_accuracy(workspace=agent.workspace, agent=agent)}
    va1 = by_version[v1]
    assert va1.reviewed == 4
    assert [(f.path, f.corrected, f.reviewed, f.rate) for f in va1.fields] == [
        ("/items/*/sku", 2, 4, 0.5),  # two executions, however many rows each
        ("/total", 2, 4, 0.5),
    ]
    va2 = by_version[v2]
    assert va2.reviewed == 1
    assert va2.fields == []  # undone: the field was not wrong after all


def test_other_workspaces_and_agents_do_not_count(agent_version, charlie):
    theirs = AgentVersionFactory(agent__workspace=charlie.memberships.get().workspace)
    reviewed(theirs, [("/total", 1, 2)])
    other_agent = AgentVersionFactory(agent__workspace=agent_version.agent.workspace)
    reviewed(other_agent, [("/total", 1, 2)])
    (va,) = field_accuracy(workspace=agent_version.agent.workspace, agent=agent_version.agent)
    assert va.reviewed == 0 and va.fields == []
