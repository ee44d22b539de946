"""Alert pages: admins create, edit, snooze and delete rules; viewers read them only;
another workspace's rules are 404; the form names each bad field; the nav badge."""

from decimal import Decimal

import pytest
from django.utils import timezone

from executions.alerts.models import AlertEvent, AlertRule, Notification

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "Errors up",
    "metric": "error_rate",
    "window_minutes": "15",
    "condition": "above",
    "threshold": "10",
    "min_runs": "20",
    "sustain": "3",
    "enabled": "on",
    "emails": "ops@example.com",
}


def make(workspace, **fields):
    values = {"name": "Errors", "metric": "error_rate", "threshold": Decimal(10)}
    values.update(fields)
    return AlertRule.objects.create(workspace=workspace, **values)


def test_an_admin_creates_a_rule(alice_client, workspace):
    response = alice_client.post("/alerts/new/", GOOD)
    rule = AlertRule.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/alerts/{rule.pk}/"
    assert (rule.workspace, rule.min_runs, rule.sustain) == (workspace, 20, 3)
    assert rule.created_by.username == "alice"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"window_minutes": "2"}, "window_minutes", "greater than or equal to 5"),
        ({"window_minutes": "2000"}, "window_minutes", "less than or equal to 1440"),
        ({"threshold": ""}, "threshold", "fixed value or a factor"),
        ({"baseline_factor": "2"}, "baseline_factor", "not both"),
        ({"emails": "ops@example.com, nope"}, "emails", "“nope” is not an email address"),
        ({"metric": "vibes"}, "metric", "Select a valid choice"),
        ({"webhook_url": "ftp://example.com/x"}, "webhook_url", ""),
        ({"sustain": "0"}, "sustain", "greater than or equal to 1"),
        (
            {"metric": "approvals_waiting", "threshold": "", "baseline_factor": "2"},
            "baseline_factor",
            "no baseline",
        ),
    ],
)
def test_the_form_names_each_bad_field(alice_client, change, field, words):
    response = alice_client.post("/alerts/new/", {**GOOD, **change})
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not AlertRule.objects.exists()


def test_a_rule_scoped_by_two_things_is_refused(alice_client, agent_version):
    response = alice_client.post(
        "/alerts/new/", {**GOOD, "agent_name": "bot", "agent_version": agent_version.pk}
    )
    assert response.status_code == 422
    assert "agent_version" in response.context["form"].errors


def test_another_workspaces_version_cannot_be_picked(alice_client, other_workspace):
    from tests.factories import AgentVersionFactory

    theirs = AgentVersionFactory(agent__workspace=other_workspace)
    response = alice_client.post("/alerts/new/", {**GOOD, "agent_version": theirs.pk})
    assert response.status_code == 422
    assert "agent_version" in response.context["form"].errors


def test_viewers_read_rules_but_cannot_change_them(client, viewer, workspace):
    rule = make(workspace)
    client.force_login(viewer)
    page = client.get("/alerts/")
    assert page.status_code == 200
    assert b"Errors" in page.content and b"New rule" not in page.content
    detail = client.get(f"/alerts/{rule.pk}/")
    assert detail.status_code == 200 and b"/edit/" not in detail.content
    assert client.get("/alerts/new/").status_code == 403
    assert client.post("/alerts/new/", GOOD).status_code == 403
    assert client.post(f"/alerts/{rule.pk}/edit/", GOOD).status_code == 403
    assert client.post(f"/alerts/{rule.pk}/delete/").status_code == 403
    assert client.post(f"/alerts/{rule.pk}/snooze/", {"hours": "1"}).status_code == 403
    rule.refresh_from_db()
    assert (rule.name, rule.snoozed_until) == ("Errors", None)
    assert AlertRule.objects.count() == 1


def test_another_workspaces_rules_are_404(alice_client, other_workspace):
    theirs = make(other_workspace)
    for url in ["/", "/edit/"]:
        assert alice_client.get(f"/alerts/{theirs.pk}{url}").status_code == 404
    assert alice_client.post(f"/alerts/{theirs.pk}/delete/").status_code == 404
    assert alice_client.post(f"/alerts/{theirs.pk}/snooze/", {"hours": "1"}).status_code == 404
    assert b"Errors" not in alice_client.get("/alerts/").content
    assert AlertRule.objects.filter(pk=theirs.pk).exists()


def test_edit_snooze_and_delete(alice_client, workspace):
    rule = make(workspace, state="firing", breaches=3)
    workspace.alerts_firing = 1
    workspace.save()
    response = alice_client.post(f"/alerts/{rule.pk}/edit/", {**GOOD, "threshold": "20"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 20 and rule.breaches == 0
    assert alice_client.post(f"/alerts/{rule.pk}/snooze/", {"hours": "4"}).status_code == 302
    rule.refresh_from_db()
    assert rule.snoozed
    bad = alice_client.post(f"/alerts/{rule.pk}/snooze/", {"hours": "forever"}, follow=True)
    assert "hours: choose one of" in bad.content.decode()
    assert alice_client.post(f"/alerts/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.exists()
    workspace.refresh_from_db()
    assert workspace.alerts_firing == 0


def test_history_shows_values_runs_links_and_attempts(alice_client, workspace):
    rule = make(workspace, agent_name="bot")
    now = timezone.now()
    event = AlertEvent.objects.create(
        rule=rule,
        state="firing",
        value=42.5,
        baseline=10.0,
        threshold=20.0,
        runs=40,
        window_start=now,
        window_end=now,
    )
    Notification.objects.create(event=event, channel="webhook", target="x", attempt=1, error="e")
    Notification.objects.create(event=event, channel="webhook", target="x", attempt=2, succeeded=1)
    html = alice_client.get(f"/alerts/{rule.pk}/").content.decode()
    assert "42.5" in html and "40 runs" in html
    assert "/executions/?agent=bot&amp;status=failed&amp;status=timed_out&amp;after=" in html
    assert "Signed webhook #1 failed" in html and "Signed webhook #2 sent" in html
    assert 'href="/overview/?range=24h&amp;agent=bot"' in html


def test_the_nav_shows_how_many_fire_without_a_query(alice_client, workspace):
    make(workspace, state="firing")
    workspace.alerts_firing = 1
    workspace.save()
    html = alice_client.get("/alerts/").content.decode()
    assert '<span class="nav-badge"' in html
    assert "Firing now" in html
    other_page = alice_client.get("/agents/").content.decode()
    assert 'title="1 alert rule firing now">1<' in other_page


@pytest.mark.parametrize(
    "query, words",
    [
        ("agent=bot&start=2026-03-01", "“Start date” (start) pins it to fixed dates"),
        ("after=2026-03-01T10:00:00Z", "“Created from” (after) pins it to fixed dates"),
        ("version=999999", "“Version” (version) is not valid"),
        ("min_cost=-3", "“Min cost ($)” (min_cost) is not valid"),
    ],
)
def test_a_view_whose_filters_cannot_scope_a_rule_is_refused_naming_the_filter(
    alice_client, alice, workspace, query, words
):
    from executions.models import SavedView

    saved = SavedView.objects.create(workspace=workspace, owner=alice, name="v", query=query)
    response = alice_client.post("/alerts/new/", {**GOOD, "saved_view": saved.pk})
    assert response.status_code == 422
    errors = " ".join(response.context["form"].errors["saved_view"])
    assert "The view “v” cannot scope a rule" in errors and words in errors, errors
    assert not AlertRule.objects.exists()


def test_a_view_with_any_other_filter_makes_a_rule(alice_client, alice, workspace):
    from executions.models import SavedView

    query = "q=timeout&meta=customer%3Dacme&tag=prod&feedback=corrected&budget=flagged&step=search"
    saved = SavedView.objects.create(workspace=workspace, owner=alice, name="v", query=query)
    response = alice_client.post("/alerts/new/", {**GOOD, "saved_view": saved.pk})
    assert response.status_code == 302, response.context["form"].errors
    rule = AlertRule.objects.get()
    page = alice_client.get(f"/alerts/{rule.pk}/").content.decode()
    assert "no longer suits it" not in page
    # The view changes afterwards: the rule page says what no longer fits.
    saved.query = "start=2026-03-01"
    saved.save()
    page = alice_client.get(f"/alerts/{rule.pk}/").content.decode()
    assert "no longer suits it" in page and "(start) pins it to fixed dates" in page


def test_the_admin_makes_rules_with_the_same_checks(admin_client, workspace, other_workspace):
    from executions.models import SavedView
    from tests.factories import UserFactory

    owner = UserFactory()
    elsewhere = SavedView.objects.create(
        workspace=other_workspace, owner=owner, name="theirs", query="min_cost=1"
    )
    dated = SavedView.objects.create(
        workspace=workspace, owner=owner, name="dated", query="start=2026-03-01"
    )
    url = "/admin/executions/alertrule/add/"
    inline = {f"events-{k}": "0" for k in ("TOTAL_FORMS", "INITIAL_FORMS", "MAX_NUM_FORMS")}
    form = {**GOOD, **inline, "workspace": workspace.pk}
    for change, field, words in [
        ({"saved_view": elsewhere.pk}, "saved_view", "belongs to another workspace"),
        ({"saved_view": dated.pk}, "saved_view", "(start) pins it to fixed dates"),
        ({"threshold": ""}, "threshold", "fixed value or a factor"),
    ]:
        response = admin_client.post(url, {**form, **change})
        assert response.status_code == 200  # the admin redraws its form with the errors
        errors = response.context["adminform"].form.errors
        assert words in " ".join(errors.get(field, [])), errors
    assert not AlertRule.objects.exists()
    response = admin_client.post(url, {**form, "saved_view": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AlertRule.objects.get().workspace == workspace
