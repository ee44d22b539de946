"""seed_demo builds a varied, consistent demo workspace, and running it again adds nothing."""

import io
from collections import Counter
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, F, Sum
from django.test import override_settings
from django.utils import timezone
from PIL import Image

from agents.models import Agent, ApiKey, Membership, ModelPrice, Role, Schedule, Workspace
from executions.demo.plan import build_plan
from executions.demo.seed import seed_demo
from executions.models import (
    Artifact,
    Batch,
    Execution,
    ExecutionCounter,
    Source,
    Status,
    Step,
    StepStatus,
)
from feedback.models import ExecutionNote, FieldCorrection


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seed once for the module (it takes a few seconds) and roll it all back after."""
    media = tmp_path_factory.mktemp("media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media), transaction.atomic():
        output = _seed()
        yield {"output": output, "workspace": Workspace.objects.get(slug="demo")}
        transaction.set_rollback(True)


@pytest.fixture
def demo(seeded, db):
    return seeded["workspace"]


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_running_it_twice_creates_nothing_new(demo, seeded):
    before = _row_counts()
    second = _seed()
    assert _row_counts() == before
    # Quiet on every later start: `make run` calls it each time.
    assert second.strip().splitlines() == [f"Log in at {settings.SITE_URL}/ as demo / demo"]
    assert "Seeded" in seeded["output"]
    assert seeded["output"].strip().endswith("as demo / demo")


def test_seeding_again_days_later_creates_nothing_new(demo):
    before = _row_counts()
    result = seed_demo(now=timezone.now() + timedelta(days=2, hours=5, minutes=17))
    assert not result.created_anything
    assert _row_counts() == before


def test_the_plan_does_not_depend_on_when_it_is_made():
    now = timezone.now()
    plans = [
        build_plan(now + shift)[0]
        for shift in (timedelta(0), timedelta(hours=7, minutes=13), timedelta(days=3))
    ]
    first = [(r.id, r.agent, r.status, r.rerun_of, r.batch) for r in plans[0]]
    for plan in plans[1:]:
        assert [(r.id, r.agent, r.status, r.rerun_of, r.batch) for r in plan] == first
    again = build_plan(now)[0]
    assert [r.created_at for r in again] == [r.created_at for r in plans[0]]


def test_it_has_several_hundred_executions_in_every_status(demo):
    executions = Execution.objects.filter(workspace=demo)
    assert 400 <= executions.count() <= 600
    statuses = Counter(executions.values_list("status", flat=True))
    assert set(statuses) == set(Status.values)
    # Skewed like a healthy system: mostly completed.
    assert statuses[Status.COMPLETED] > executions.count() / 2
    oldest = executions.order_by("created_at").first().created_at
    assert oldest > executions.order_by("-created_at").first().created_at - timedelta(days=31)


def test_logins_and_roles(demo):
    for username, role in [
        ("demo", Role.ADMIN),
        ("reviewer", Role.REVIEWER),
        ("operator", Role.OPERATOR),
    ]:
        user = authenticate(username=username, password=username)
        assert user is not None, username
        assert Membership.objects.get(user=user, workspace=demo).role == role
    admin = authenticate(username="demo", password="demo")
    assert admin.is_staff and admin.is_superuser
    assert not authenticate(username="reviewer", password="reviewer").is_staff


def test_the_deleted_agent_keeps_its_name_on_its_executions(demo):
    runs = Execution.objects.filter(workspace=demo, agent_name="ticket-triage")
    assert runs.count() > 10
    assert not runs.filter(agent__isnull=False).exists()
    assert not runs.filter(agent_version__isnull=False).exists()
    assert set(runs.values_list("version_name", flat=True)) == {"v1"}
    assert not Agent.objects.filter(workspace=demo, name="ticket-triage").exists()
    assert all(r.agent_removed for r in runs)
    # Every other agent is still there, with its versions.
    live = set(Agent.objects.filter(workspace=demo).values_list("name", flat=True))
    assert {
        "invoice-extractor",
        "receipt-reader",
        "web-browser",
        "support-agent",
        "daily-sales-report",
    } <= live
    invoice = Agent.objects.get(workspace=demo, name="invoice-extractor")
    assert set(invoice.versions.values_list("version", flat=True)) == {"v1", "v2"}
    v2 = invoice.versions.get(version="v2")
    assert v2.output_schema["properties"]["line_items"]["type"] == "array"
    assert v2.config["model"] == "gpt-4o"


def test_failures_hold_their_error_in_the_failing_step(demo):
    failed = Execution.objects.filter(workspace=demo, status=Status.FAILED)
    assert failed.count() >= 10
    for execution in failed:
        assert execution.error and execution.failure_reason
        failing = execution.steps.filter(status=StepStatus.FAILED, error=execution.error)
        assert failing.count() == 1, execution.id
        # The failing step is the last one: nothing ran after it.
        assert failing.get().sequence == execution.steps.order_by("-sequence")[0].sequence
        assert execution.output is None


def test_steps_form_trees_and_totals_match_them(demo):
    executions = Execution.objects.filter(workspace=demo).annotate(
        steps_n=Count("steps"),
        prompt=Sum("steps__prompt_tokens"),
        completion=Sum("steps__completion_tokens"),
    )
    for e in executions:
        assert e.step_count == e.steps_n
        assert e.prompt_tokens == (e.prompt or 0)
        assert e.completion_tokens == (e.completion or 0)
        assert e.total_tokens == e.prompt_tokens + e.completion_tokens
        if e.completed_at and e.started_at:
            assert e.duration_ms == int((e.completed_at - e.started_at) / timedelta(milliseconds=1))
        if e.status in {Status.PENDING, Status.QUEUED, Status.RUNNING}:
            assert e.credits is None and e.completed_at is None
    children = Step.objects.filter(execution__workspace=demo, parent__isnull=False)
    assert children.exists()
    # A parent is in the same execution and comes before its children.
    assert not children.exclude(parent__execution_id=F("execution_id")).exists()
    assert not children.filter(parent__sequence__gte=F("sequence")).exists()
    assert Execution.objects.filter(workspace=demo, credits__isnull=True).exists()
    assert Execution.objects.filter(workspace=demo, credits__isnull=False).exists()


def test_counters_match_the_executions(demo):
    actual = {
        (r["agent_name"], r["status"]): r["n"]
        for r in Execution.objects.filter(workspace=demo)
        .values("agent_name", "status")
        .annotate(n=Count("id"))
    }
    counted = {
        (c.agent_name, c.status): c.count for c in ExecutionCounter.objects.filter(workspace=demo)
    }
    assert counted == actual


def test_receipts_are_real_images_with_bounding_boxes(demo):
    images = Artifact.objects.filter(workspace=demo, kind="image")
    assert images.count() > 20
    # A completed run's image: its output carries the same boxes.
    artifact = images.filter(execution__status=Status.COMPLETED).order_by("pk").first()
    assert artifact is not None
    assert artifact.file.name.startswith(f"artifacts/{demo.id}/")
    with default_storage.open(artifact.file.name) as f:
        image = Image.open(f)
        assert image.format == "PNG"
    labels = {box["label"] for box in artifact.bounding_boxes}
    assert {"merchant", "total"} <= labels
    for box in artifact.bounding_boxes:
        assert 0 <= box["x"] < 1 and 0 <= box["y"] < 1 and 0 < box["confidence"] <= 1
    assert artifact.execution.output["bounding_boxes"] == artifact.bounding_boxes


def test_browser_runs_have_thoughts_blocks_and_screenshots_on_actions(demo):
    shots = Artifact.objects.filter(workspace=demo, kind="screenshot").select_related("step")
    assert shots.exists()
    assert {a.step.kind for a in shots} == {"action"}
    run = Execution.objects.filter(
        workspace=demo, agent_name="web-browser", status=Status.COMPLETED
    ).first()
    kinds = Counter(run.steps.values_list("kind", flat=True))
    assert kinds["block"] == 3 and kinds["thought"] >= 3 and kinds["action"] >= 5
    assert not run.steps.filter(kind="action", parent__isnull=True).exists()


def test_support_runs_have_model_and_tool_calls(demo):
    run = Execution.objects.filter(
        workspace=demo, agent_name="support-agent", status=Status.COMPLETED
    ).first()
    model = run.steps.filter(kind="model_call").first()
    assert model.model == "claude-sonnet-4" and model.prompt_tokens > 0 and model.cost_usd > 0
    assert model.input["messages"] and model.output
    tool = run.steps.filter(kind="tool_call").first()
    assert tool.name == tool.attributes["tool.name"] and tool.input and tool.output
    used = set(
        Step.objects.filter(execution__workspace=demo)
        .exclude(model="")
        .values_list("model", flat=True)
    )
    assert used <= set(ModelPrice.objects.values_list("model", flat=True))


def test_approvals_batches_schedules_and_reruns(demo):
    waiting = Execution.objects.filter(workspace=demo, status=Status.AWAITING_APPROVAL)
    assert waiting.exists()
    assert all(e.approval_request and e.approval_request["amount"] > 100 for e in waiting)
    rejected = Execution.objects.filter(workspace=demo, status=Status.REJECTED).first()
    assert rejected.decided_by.username == "reviewer" and rejected.approval_note

    batches = Batch.objects.filter(workspace=demo).annotate(n=Count("executions"))
    assert 2 <= batches.count() <= 3
    for batch in batches:
        assert 5 <= batch.n <= 20
        assert set(batch.executions.values_list("source", flat=True)) == {Source.BATCH}

    schedule = Schedule.objects.get(workspace=demo, cron="0 7 * * 1-5")
    fired = Execution.objects.filter(schedule=schedule)
    assert fired.count() >= 15
    assert set(fired.values_list("source", flat=True)) == {Source.SCHEDULE}
    assert all(e.created_at.weekday() < 5 and e.created_at.hour == 7 for e in fired)
    assert "report" in fired.filter(status=Status.COMPLETED).first().output

    reruns = Execution.objects.filter(workspace=demo, rerun_of__isnull=False)
    assert reruns.exists()
    for rerun in reruns.select_related("rerun_of"):
        assert rerun.source == Source.RERUN
        assert rerun.input == rerun.rerun_of.input
        assert rerun.rerun_of.status == Status.FAILED

    assert Artifact.objects.filter(workspace=demo, kind="code").exists()
    assert Execution.objects.filter(workspace=demo, output__has_key="code").exists()


def test_requests_metadata_and_traces(demo):
    api = Execution.objects.filter(workspace=demo, source=Source.API).first()
    assert api.request["method"] == "POST"
    assert api.request["headers"]["Authorization"] == "Bearer [redacted]"
    assert api.request["body"]["input"] == api.input
    keys = set()
    for metadata in Execution.objects.filter(workspace=demo).values_list("metadata", flat=True):
        keys |= set(metadata)
    assert {"customer", "environment", "region", "channel"} <= keys
    assert Execution.objects.filter(workspace=demo).exclude(trace_id="").count() > 300


def test_corrections_and_notes_are_counted(demo):
    corrections = FieldCorrection.objects.filter(workspace=demo).select_related("execution")
    assert corrections.count() > 10
    for correction in corrections:
        assert correction.path.startswith("/")
        assert correction.author.username == "reviewer"
        assert correction.created_at > correction.execution.completed_at
    first = corrections.filter(path="/totals/total").first()
    assert first.value_before == first.execution.output["totals"]["total"]
    assert ExecutionNote.objects.filter(workspace=demo).exists()
    counted = Execution.objects.filter(workspace=demo).annotate(
        c=Count("corrections", distinct=True), n=Count("notes", distinct=True)
    )
    for e in counted:
        assert (e.correction_count, e.note_count) == (e.c, e.n)


def test_the_demo_key_is_printed_once_and_stored_hashed(demo, seeded):
    line = next(x for x in seeded["output"].splitlines() if "demo key" in x)
    raw = line.rsplit(" ", 1)[1]
    key = ApiKey.objects.get(workspace=demo, name="demo key")
    assert key.hashed_key == ApiKey.hash(raw) and raw not in key.hashed_key
    assert ApiKey.objects.filter(workspace=demo).count() == 2
    assert ApiKey.objects.filter(workspace=demo, revoked_at__isnull=False).count() == 1


def test_thoughts_are_titled_by_what_the_agent_decided(demo):
    names = set(
        Step.objects.filter(execution__workspace=demo, kind="thought").values_list(
            "name", flat=True
        )
    )
    assert "thought" not in names
    assert "Sign in with the stored login" in names


def test_the_readmes_metadata_examples_match_demo_runs(demo):
    """The README's meta= examples, run on the demo, find something."""
    import re

    from django.conf import settings

    readme = (settings.BASE_DIR / "README.md").read_text()
    examples = set(re.findall(r"(?:meta|metadata)=(\w+)=([\w-]+)", readme))
    examples |= set(re.findall(r"`(customer|environment)=([\w-]+)`", readme))
    assert examples
    for key, value in examples:
        found = Execution.objects.filter(workspace=demo, **{f"metadata__{key}": value})
        assert found.exists(), f"{key}={value} from README.md matches no demo run"
