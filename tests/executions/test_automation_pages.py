"""The automation rules pages: the list, a rule with its log and the backfill button,
the rule form; admins edit, everyone else reads; other workspaces get 404."""

import pytest
from django.urls import reverse

from agents.models import Membership
from executions.automation.models import Rule, RuleRun, Trigger
from executions.models import SavedView, Status
from feedback.queues.services import queue_create
from tests.factories import ExecutionFactory


@pytest.fixture
def queue(alice, workspace):
    return queue_create(membership=Membership.objects.get(user=alice), name="Auto")


@pytest.fixture
def rule(workspace, queue):
    return Rule.objects.create(
        workspace=workspace, name="Review failures", trigger=Trigger.FAILED, queue=queue
    )


def test_admins_create_a_rule_with_the_form(client, alice, workspace, queue):
    view = SavedView.objects.create(
        workspace=workspace, owner=alice, name="Refunds", query="agent=refunds"
    )
    client.force_login(alice)
    assert reverse("automation:create") in client.get(reverse("automation:list")).content.decode()
    response = client.post(
        reverse("automation:create"),
        {
            "name": "Sample failures",
            "enabled": "on",
            "trigger": Trigger.FAILED,
            "saved_view": view.pk,
            "sample_percent": "12.5",
            "queue": queue.pk,
            "tags": "Needs-Review, refund",
        },
    )
    rule = Rule.objects.get(name="Sample failures")
    assert response.status_code == 302
    assert response["Location"] == reverse("automation:detail", args=[rule.pk])
    assert (rule.workspace, rule.saved_view, rule.queue, rule.created_by) == (
        workspace,
        view,
        queue,
        alice,
    )
    assert (str(rule.sample_percent), rule.tags) == ("12.50", ["needs-review", "refund"])


def test_rule_form_errors_name_the_field(client, alice, rule, charlie, other_workspace):
    foreign = queue_create(membership=Membership.objects.get(user=charlie), name="Theirs")
    client.force_login(alice)
    url = reverse("automation:create")
    bad = client.post(
        url,
        {
            "name": "Review failures",
            "trigger": "sometimes",
            "sample_percent": "150",
            "queue": foreign.pk,
            "tags": "no spaces allowed",
            "webhook_url": "ftp://example.com/x",
        },
    )
    assert bad.status_code == 400
    errors = bad.context["form"].errors
    assert {"name", "trigger", "sample_percent", "queue", "tags", "webhook_url"} <= set(errors)
    assert "exists" in errors["name"][0]
    bad = client.post(url, {"name": "Nothing", "trigger": Trigger.FINISHED, "sample_percent": "5"})
    assert "at least one action" in bad.context["form"].non_field_errors()[0]
    assert "at least one action" in bad.content.decode()
    assert Rule.objects.count() == 1


def test_admins_edit_a_rule(client, alice, rule):
    client.force_login(alice)
    url = reverse("automation:edit", args=[rule.pk])
    assert client.get(url).context["form"]["tags"].value() == ""
    response = client.post(
        url,
        {
            "name": "Review failures",
            "trigger": Trigger.THUMBS_DOWN,
            "sample_percent": "50",
            "queue": "",
            "tags": "bad",
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.trigger, rule.queue, rule.tags, rule.enabled) == (
        "thumbs_down",
        None,
        ["bad"],
        False,
    )


def test_the_log_and_the_backfill_button(
    client,
    alice,
    rule,
    agent_version,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    failed = ExecutionFactory.create_batch(2, agent_version=agent_version, status=Status.FAILED)
    ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    client.force_login(alice)
    url = reverse("automation:detail", args=[rule.pk])
    assert client.get(url).context["log"] == []
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("automation:backfill", args=[rule.pk]))
    assert response.status_code == 302
    page = client.get(url)
    assert {r.execution_id for r in page.context["log"]} == {r.pk for r in failed}
    assert all(r.backfill and r.outcome == "applied" for r in page.context["log"])
    assert "queue +1" in page.content.decode()
    assert [r for r in client.get(url, {"outcome": "failed"}).context["log"]] == []
    bad = client.get(url, {"outcome": "sometimes"})
    assert bad.status_code == 400 and "outcome: choose one of" in bad.content.decode()
    # The list says when each rule last decided, in a fixed number of queries.
    Rule.objects.create(workspace=rule.workspace, name="Another", trigger=Trigger.FINISHED)
    client.get(reverse("automation:list"))
    with django_assert_num_queries(6, exact=False):
        listing = client.get(reverse("automation:list"))
    last = {r.name: r.last_run for r in listing.context["rules"]}
    assert last["Review failures"] == RuleRun.objects.latest("created_at").created_at
    assert last["Another"] is None


@pytest.mark.parametrize("who", ["viewer", "operator", "bob"])
def test_others_read_but_do_not_change_rules(client, request, rule, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    listing = client.get(reverse("automation:list"))
    assert listing.status_code == 200 and "Review failures" in listing.content.decode()
    assert reverse("automation:create") not in listing.content.decode()
    detail = client.get(reverse("automation:detail", args=[rule.pk]))
    assert detail.status_code == 200 and 'id="backfill"' not in detail.content.decode()
    assert client.get(reverse("automation:create")).status_code == 403
    assert client.post(reverse("automation:create"), {"name": "x"}).status_code == 403
    assert client.get(reverse("automation:edit", args=[rule.pk])).status_code == 403
    assert client.post(reverse("automation:backfill", args=[rule.pk])).status_code == 403
    assert not RuleRun.objects.exists()


def test_other_workspaces_get_404(client, charlie, rule):
    client.force_login(charlie)
    assert "Review failures" not in client.get(reverse("automation:list")).content.decode()
    for name in ("detail", "edit", "backfill"):
        method = client.post if name == "backfill" else client.get
        assert method(reverse(f"automation:{name}", args=[rule.pk])).status_code == 404


def test_the_backfill_refuses_get(client, alice, rule):
    client.force_login(alice)
    assert client.get(reverse("automation:backfill", args=[rule.pk])).status_code == 405
