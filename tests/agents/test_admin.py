import pytest
from django.contrib.admin.sites import site
from django.urls import reverse
from django.utils import timezone

from agents.models import ApiKey, ModelPrice

from ..factories import (
    ApiKeyFactory,
    ArtifactFactory,
    BatchFactory,
    ExecutionFactory,
    ExecutionNoteFactory,
    FieldCorrectionFactory,
    MembershipFactory,
    ScheduleFactory,
    StepFactory,
    UserFactory,
)  # fmt: skip

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated(workspace, other_workspace, alice):
    execution = ExecutionFactory(agent_version__agent__workspace=workspace)
    # A tool call, so the overview's step rollups have rows to show.
    StepFactory(execution=execution, kind="tool_call", duration_ms=10)
    ArtifactFactory(execution=execution)
    BatchFactory(workspace=workspace)
    ScheduleFactory(agent_version=execution.agent_version)
    FieldCorrectionFactory(execution=execution)
    ExecutionNoteFactory(execution=execution)
    ApiKeyFactory.create_with_raw(workspace=workspace)
    from executions import counters
    from executions.models import ExecutionPin, PendingSpanEvents, SavedView, WebhookDelivery

    counters.rebuild()
    SavedView.objects.create(
        workspace=workspace, owner=alice, name="Failures", query="status=failed"
    )
    WebhookDelivery.objects.create(execution=execution, url="http://127.0.0.1:9/hook")
    PendingSpanEvents.objects.create(workspace=workspace, trace_id="ab" * 16, span_id="cd" * 8)
    ExecutionPin.objects.create(workspace=workspace, execution=execution, pinned_by=alice)
    from executions.alerts.models import AlertEvent, AlertRule, Notification

    rule = AlertRule.objects.create(
        workspace=workspace, name="Errors", metric="error_rate", threshold=10
    )
    event = AlertEvent.objects.create(
        rule=rule, state="firing", window_start=timezone.now(), window_end=timezone.now()
    )
    Notification.objects.create(event=event, channel="email", target="ops@example.com")
    ModelPrice.objects.update_or_create(
        workspace=None,
        model="gpt-4o",
        defaults={"input_per_million": 2.5, "output_per_million": 10},
    )
    ExecutionFactory(agent_version__agent__workspace=other_workspace)
    return execution


@pytest.fixture
def superuser_client(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_every_model_is_registered():
    from django.apps import apps

    for app in ["agents", "executions", "feedback"]:
        for model in apps.get_app_config(app).get_models():
            assert model in site._registry, model


def test_every_changelist_and_change_page_renders_for_staff(superuser_client, populated):
    # A failure, so that the error-group rollup has a row to show.
    ExecutionFactory(
        agent_version=populated.agent_version, status="failed", error="Timeout after 30 s"
    )
    for model, model_admin in site._registry.items():
        if model._meta.app_label not in {"agents", "executions", "feedback"}:
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        changelist = superuser_client.get(reverse(f"{name}_changelist"))
        assert changelist.status_code == 200, name
        obj = model_admin.get_queryset(changelist.wsgi_request).first()
        assert obj is not None, name
        change = superuser_client.get(reverse(f"{name}_change", args=[obj.pk]))
        assert change.status_code == 200, name


def test_admin_is_refused_to_non_staff(alice_client):
    response = alice_client.get(reverse("admin:executions_execution_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_see_only_their_workspaces_rows(client, workspace, populated):
    staff = UserFactory(username="sam", is_staff=True)
    MembershipFactory(user=staff, workspace=workspace)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="executions"))
    client.force_login(staff)
    response = client.get(reverse("admin:executions_execution_changelist"))
    assert response.status_code == 200
    shown = {e.pk for e in response.context["cl"].result_list}
    assert shown == {populated.pk}


def test_staff_see_only_their_workspaces_rollups(client, workspace, other_workspace):
    ExecutionFactory(workspace=workspace, agent_name="mine")
    ExecutionFactory(workspace=other_workspace, agent_name="theirs")
    staff = UserFactory(username="sam", is_staff=True)
    MembershipFactory(user=staff, workspace=workspace)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="executions"))
    client.force_login(staff)
    response = client.get(reverse("admin:executions_runrollup_changelist"))
    assert response.status_code == 200
    shown = {row.agent_name for row in response.context["cl"].result_list}
    assert shown == {"mine"}
    row = response.context["cl"].result_list[0]
    change = client.get(reverse("admin:executions_runrollup_change", args=[row.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content  # the triggers own the rows


def test_execution_changelist_runs_no_full_count(
    superuser_client, populated, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        superuser_client.get(reverse("admin:executions_execution_changelist"))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # Only the capped count runs: a COUNT over a LIMITed subquery, never the bare table.
    assert counts, "expected the capped count"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_search_table_changelist_queries_do_not_grow_with_its_rows(superuser_client, populated):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = superuser_client.get(reverse("admin:executions_executionsearch_changelist"))
        assert response.status_code == 200
        return len(captured)

    few = queries()
    ExecutionFactory.create_batch(10, agent_version__agent__workspace=populated.workspace)
    assert queries() == few


def test_execution_change_page_does_not_load_every_step(superuser_client, populated):
    for i in range(1, 80):
        StepFactory(execution=populated, sequence=1000 + i)
    response = superuser_client.get(
        reverse("admin:executions_execution_change", args=[populated.pk])
    )
    assert response.content.count(b"<li>#") == 50


def test_creating_an_api_key_in_admin_shows_it_once_and_stores_a_hash(superuser_client, workspace):
    response = superuser_client.post(
        reverse("admin:agents_apikey_add"), {"workspace": workspace.pk, "name": "ci"}, follow=True
    )
    text = response.content.decode()
    key = ApiKey.objects.get(name="ci")
    raw = text.split("will not be shown again: ")[1].split("<")[0].strip()
    assert raw.startswith("rb_")
    assert key.hashed_key == ApiKey.hash(raw)
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())
