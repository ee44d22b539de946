"""Alert pages and the budget marks in a real browser: no console errors, the nav badge,
the rule form without JavaScript, and the run page's budget chips. Screenshots go to
$SCREENSHOT_DIR when it is set (for people to look at; nothing compares them)."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from executions import budgets, counters
from executions.alerts import evaluate
from executions.alerts.models import AlertEvent, AlertRule, Notification
from executions.models import Step
from tests.factories import AgentVersionFactory, ExecutionFactory

from .conftest import assert_no_unexpected_errors, login_cookie, watch

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = os.environ.get("SCREENSHOT_DIR", "")


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


@pytest.fixture
def alerting(workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="invoice-extractor")
    now = timezone.now()
    for i in range(6):
        ExecutionFactory(
            agent_version=version,
            status="failed" if i % 2 else "completed",
            created_at=now - timedelta(minutes=i + 1),
        )
    firing = AlertRule.objects.create(
        workspace=workspace,
        name="Errors up",
        metric="error_rate",
        agent_name="invoice-extractor",
        window_minutes=15,
        threshold=Decimal(10),
        min_runs=3,
        emails="ops@example.com",
    )
    AlertRule.objects.create(
        workspace=workspace,
        name="Cost doubled",
        metric="total_cost",
        window_minutes=60,
        baseline_factor=Decimal(2),
        sustain=3,
    )
    evaluate.evaluate()
    event = AlertEvent.objects.get(rule=firing)
    Notification.objects.create(
        event=event, channel="email", target="ops@example.com", attempt=1, succeeded=True
    )
    return firing


def test_alert_pages_render_with_the_nav_badge(page, alerting):
    page.goto("/alerts/")
    assert page.locator(".nav-badge").inner_text().startswith("1")
    assert "Errors up" in page.locator(".firing-now").inner_text()
    shot(page, "alerts-list")
    page.click("text=Errors up >> nth=0")
    page.wait_for_selector(".alert-history")
    assert "Email #1 sent" in page.locator(".alert-history").inner_text()
    shot(page, "alerts-detail")
    page.click("text=Edit")
    page.wait_for_selector(".alert-form")
    shot(page, "alerts-form")


def test_the_rule_form_works_without_javascript(browser, live_server, alice, workspace):
    context = browser.new_context(
        base_url=live_server.url,
        java_script_enabled=False,
        locale="de-DE",
        timezone_id="Asia/Tokyo",
    )
    context.add_cookies([{**login_cookie(alice), "url": live_server.url}])
    page = context.new_page()
    watch(page)
    # The refused form answers 422, which the browser logs as a failed load.
    page.expected_errors.append("status of 422")
    page.goto("/alerts/new/")
    page.fill("#id_name", "Slow runs")
    page.select_option("#id_metric", "duration_p95")
    page.fill("#id_window_minutes", "3")
    page.fill("#id_threshold", "30")
    page.click(".alert-form button[type=submit]")
    assert "greater than or equal to 5" in page.locator(".has-error").inner_text()
    shot(page, "alerts-form-error-nojs")
    page.fill("#id_window_minutes", "30")
    page.click(".alert-form button[type=submit]")
    page.wait_for_selector(".rule-summary")
    assert AlertRule.objects.get().window_minutes == 30
    shot(page, "alerts-detail-nojs-tokyo")
    assert_no_unexpected_errors(page)
    context.close()


def test_the_run_page_marks_the_budget_stop(page, workspace):
    from executions.ingest import services
    from executions.ingest.steps import StepRecord

    version = AgentVersionFactory(agent__workspace=workspace, agent__name="researcher")
    # Stopped the way ingestion stops it (the lifecycle's terminate, the steps marked):
    # a running run's page would keep a live stream open past the end of the test.
    execution = ExecutionFactory(
        agent_version=version,
        status="running",
        completed_at=None,
        duration_ms=None,
        cost_usd=0,
        step_count=0,
        budget=budgets.parse({"cost": 0.5, "soft": {"cost": 0.3}}),
    )
    records = [
        StepRecord(kind="model_call", name="chat", model="gpt-x", cost_usd=Decimal(cost))
        for cost in ("0.2", "0.11", "0.21")
    ]
    services.steps_append(workspace=workspace, execution_id=execution.pk, records=records)
    execution.refresh_from_db()
    assert execution.status == "terminated"
    page.goto(f"/executions/{execution.pk}/")
    page.wait_for_selector("#step-2")
    assert "Stopped here" in page.locator("#step-2").inner_text()
    assert "Soft limit" in page.locator("#step-1").inner_text()
    shot(page, "budget-run-page")
    # Steps before their run: the step rollups' SQLite triggers read the run of each
    # deleted step, and the end-of-test flush may empty the tables in either order.
    Step.objects.filter(execution=execution).delete()
    execution.delete()


def test_the_table_rows_carry_the_budget_badges_and_filter(page, workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="researcher")
    stopped = ExecutionFactory(
        agent_version=version,
        status="terminated",
        stopped_by="budget",
        failure_reason="budget: cost $0.52 passed $0.50 at step #2",
        budget={"stop": {"limit": "cost", "reason": "budget: cost $0.52 passed $0.50 at step #2"}},
    )
    flagged = ExecutionFactory(
        agent_version=version,
        budget={
            "flagged": True,
            "flags": [{"limit": "cost", "message": "cost $0.31 passed $0.30"}],
        },
    )
    plain = ExecutionFactory(agent_version=version)
    counters.rebuild(workspace)  # factories skip the counters the table's total reads
    page.goto("/executions/?flat=1")
    stop_badge = page.locator(f"#row-{stopped.pk} .budget-pill-stop")
    assert stop_badge.inner_text() == "budget stop"
    assert stop_badge.get_attribute("title") == "budget: cost $0.52 passed $0.50 at step #2"
    assert page.locator(f"#row-{flagged.pk} .budget-pill").inner_text() == "over soft budget"
    assert page.locator(f"#row-{plain.pk} .budget-pill").count() == 0
    # A multi-line {# #} is not a Django comment: it was printed above the table.
    assert "{#" not in page.locator("main").inner_text()
    shot(page, "budget-table-rows")
    page.goto("/executions/?budget=flagged&flat=1")
    assert page.locator(".exec-row").count() == 1
    assert page.locator(f"#row-{flagged.pk}").count() == 1
    assert page.locator("#id_budget").input_value() == "flagged"
    shot(page, "budget-table-filter")


def test_a_rule_scoped_by_a_changed_view_says_what_no_longer_fits(page, alice, workspace):
    from executions.models import SavedView

    saved = SavedView.objects.create(
        workspace=workspace, owner=alice, name="Costly acme runs", query="meta=customer%3Dacme"
    )
    rule = AlertRule.objects.create(
        workspace=workspace,
        name="Acme spend",
        metric="total_cost",
        saved_view=saved,
        window_minutes=60,
        threshold=Decimal(5),
    )
    saved.query = "meta=customer%3Dacme&start=2026-03-01"
    saved.save()
    page.goto(f"/alerts/{rule.pk}/")
    warning = page.locator(".alert-warning").inner_text()
    assert "“Start date” (start) pins it to fixed dates" in warning
    assert (
        page.locator(".rule-facts a", has_text="Costly acme runs").get_attribute("href")
        == f"/executions/?view={saved.pk}"
    )
    shot(page, "alerts-detail-view-changed")
    rule.delete()
