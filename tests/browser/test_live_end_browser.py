"""A live detail page when its run ends: the waterfall, the bars, the tab counts and
the Diff tab are refreshed at `done`; "so far" ticks in the browser meanwhile."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import lifecycle
from executions.ingest import services
from executions.ingest.steps import StepRecord
from executions.models import Execution, Status, StepKind, StepStatus
from tests.executions.test_detail import make_run
from tests.factories import ArtifactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_page_catches_up_when_the_run_ends(page, agent_version):
    started = timezone.now() - timedelta(seconds=2)
    execution, _ = make_run(
        agent_version,
        steps=2,
        status=Status.RUNNING,
        nested=False,
        started_at=started,
        output=None,
    )
    with page.expect_request(lambda request: "/stream" in request.url):
        page.goto(execution.get_absolute_url())
    page.wait_for_selector("#step-2")
    assert page.locator("#tab-count-artifacts").inner_text() == "0"
    assert page.locator('nav.tabs a:has-text("Diff")').count() == 0

    # "so far" moves by itself, with no event from the server.
    so_far = page.locator("[data-elapsed-ms]")
    first = so_far.inner_text()
    assert first.endswith("so far")
    page.wait_for_function(
        "(first) => document.querySelector('[data-elapsed-ms]').textContent !== first", arg=first
    )

    now = timezone.now()
    services.steps_append(
        workspace=execution.workspace,
        execution_id=execution.pk,
        records=[
            StepRecord(
                sequence=3,
                kind=StepKind.TOOL_CALL,
                name="fetch",
                status=StepStatus.COMPLETED,
                started_at=now,
                ended_at=now + timedelta(milliseconds=300),
            )
        ],
    )
    page.wait_for_selector("#step-3")
    ArtifactFactory(execution=execution, name="report.png")
    Execution.objects.filter(pk=execution.pk).update(output={"total": 12})
    execution.refresh_from_db()
    lifecycle.transition(execution, Status.COMPLETED, at=started + timedelta(seconds=65))

    page.wait_for_selector("#run[data-ended]")
    assert page.locator(".wf-scale").inner_text() == "0 → 1 m 05 s"
    assert page.locator("#tab-count-artifacts").inner_text() == "1"
    assert page.locator('nav.tabs a:has-text("Diff")').count() == 1
    # Every card, the one that arrived live too, has its bar on the final scale.
    assert page.locator("#timeline-steps > li.step").count() == 3
    assert page.locator("#timeline-steps > li.step svg.wf").count() == 3
    assert page.locator("[data-elapsed-ms]").count() == 0
    assert page.errors == []


def test_on_the_form_tab_only_the_tab_bar_is_refreshed(page, agent_version):
    execution, _ = make_run(agent_version, steps=1, status=Status.RUNNING, nested=False)
    Execution.objects.filter(pk=execution.pk).update(output={"total": 1})
    with page.expect_request(lambda request: "/stream" in request.url):
        page.goto(f"{execution.get_absolute_url()}?tab=form")
    page.evaluate("document.querySelector('#pane .pane-body').dataset.kept = 'yes'")
    ArtifactFactory(execution=execution, name="report.png")
    execution.refresh_from_db()
    lifecycle.transition(execution, Status.COMPLETED)
    page.wait_for_selector("#run[data-ended]")
    assert page.locator("#tab-count-artifacts").inner_text() == "1"
    assert page.evaluate("document.querySelector('#pane .pane-body').dataset.kept") == "yes"
    assert page.errors == []
