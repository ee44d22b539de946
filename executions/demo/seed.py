"""Write the demo workspace: users, agents, prices, keys, schedules, batches and runs.

Idempotent: every row is found by a natural key (slug, username, name) or a uuid5
id, and only the runs missing from the database are built and inserted. A second
call therefore inserts nothing and costs a handful of queries.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from croniter import croniter
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from agents.models import (
    Agent,
    AgentVersion,
    ApiKey,
    Membership,
    ModelPrice,
    Role,
    Schedule,
    Workspace,
)
from executions import counters
from executions.models import Artifact, Batch, Execution, Step, artifact_upload_to
from feedback.models import ExecutionNote, FieldCorrection

from .catalog import AGENTS, DELETED_AGENT, MODEL_PRICES, WEBHOOK
from .plan import SCHEDULE_CRON, SCHEDULE_KEY, BatchSpec, RunSpec, build_plan
from .realise import Context, realise

SLUG = "demo"
NAME = "Demo workspace"
DEMO_KEY_NAME = "demo key"
USERS = [
    # username (= password), role, staff, name
    ("demo", Role.ADMIN, True, ("Dana", "Demo")),
    ("reviewer", Role.REVIEWER, False, ("Rita", "Reviewer")),
    ("operator", Role.OPERATOR, False, ("Olivia", "Operator")),
]


@dataclass
class SeedResult:
    workspace: Workspace
    created: Counter = field(default_factory=Counter)
    api_key: str | None = None

    @property
    def created_anything(self) -> bool:
        return any(self.created.values())


def _users(workspace: Workspace, result: SeedResult) -> dict:
    User = get_user_model()
    users = {}
    for username, role, staff, (first, last) in USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@demo.runboard.example",
                "first_name": first,
                "last_name": last,
                "is_staff": staff,
                "is_superuser": staff,
            },
        )
        if created:
            # Hashing is deliberately slow, so only new users pay for it.
            user.set_password(username)
            user.save(update_fields=["password"])
            result.created["users"] += 1
        elif staff and not (user.is_staff and user.is_superuser):
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        _, created = Membership.objects.get_or_create(
            user=user, workspace=workspace, defaults={"role": role}
        )
        result.created["memberships"] += created
        users[username] = user
    return users


def _model_prices(result: SeedResult) -> None:
    existing = set(ModelPrice.objects.filter(workspace=None).values_list("model", flat=True))
    new = [
        ModelPrice(
            model=model,
            provider=provider,
            input_per_million=inp,
            output_per_million=out,
            credits_per_million=credits,
        )
        for model, (provider, inp, out, credits) in MODEL_PRICES.items()
        if model not in existing
    ]
    ModelPrice.objects.bulk_create(new)
    result.created["model prices"] += len(new)


def _api_keys(workspace: Workspace, user, now: datetime, result: SeedResult) -> None:
    names = set(ApiKey.objects.filter(workspace=workspace).values_list("name", flat=True))
    if DEMO_KEY_NAME not in names:
        raw, prefix, hashed = ApiKey.generate()
        ApiKey.objects.create(
            workspace=workspace,
            name=DEMO_KEY_NAME,
            prefix=prefix,
            hashed_key=hashed,
            created_by=user,
        )
        result.api_key = raw
        result.created["api keys"] += 1
    if "old ingestion key" not in names:
        # A revoked key, so the admin shows both states; its raw value is never kept.
        _, prefix, hashed = ApiKey.generate()
        ApiKey.objects.create(
            workspace=workspace,
            name="old ingestion key",
            prefix=prefix,
            hashed_key=hashed,
            created_by=user,
            created_at=now - timedelta(days=60),
            revoked_at=now - timedelta(days=12),
        )
        result.created["api keys"] += 1


def _agents(workspace: Workspace, now: datetime, *, with_deleted: bool, result: SeedResult):
    agents, versions = {}, {}
    for name, spec in AGENTS.items():
        if name == DELETED_AGENT and not with_deleted:
            continue
        agent, created = Agent.objects.get_or_create(
            workspace=workspace,
            name=name,
            defaults={
                "slug": name,
                "description": spec["description"],
                "created_at": now - timedelta(days=45),
            },
        )
        result.created["agents"] += created
        agents[name] = agent
        count = len(spec["versions"])
        for n, (version, description, input_schema, output_schema, config) in enumerate(
            spec["versions"]
        ):
            # invoice-extractor:v2 shipped 16 days ago; every first version before the demo.
            age = 45 if n < count - 1 or count == 1 else 16
            obj, created = AgentVersion.objects.get_or_create(
                agent=agent,
                version=version,
                defaults={
                    "description": description,
                    "input_schema": input_schema,
                    "output_schema": output_schema,
                    "config": config,
                    "webhook_url": WEBHOOK.format(slug=name),
                    "webhook_secret": f"whsec_demo_{name.replace('-', '_')}",
                    "time_limit_seconds": 600,
                    "created_at": now - timedelta(days=age),
                },
            )
            result.created["agent versions"] += created
            versions[(name, version)] = obj
    return agents, versions


def _schedules(workspace, versions, runs: list[RunSpec], now, result: SeedResult) -> dict:
    fired = [r.created_at for r in runs if r.schedule == SCHEDULE_KEY]
    report, created = Schedule.objects.get_or_create(
        workspace=workspace,
        name="Weekday sales report",
        defaults={
            "agent_version": versions[("daily-sales-report", "v1")],
            "cron": SCHEDULE_CRON,
            "inputs": {"period": "yesterday", "recipients": ["leadership@northwind.example"]},
            "next_run_at": croniter(SCHEDULE_CRON, now).get_next(datetime),
            "last_run_at": max(fired) if fired else None,
            "created_at": now - timedelta(days=40),
        },
    )
    result.created["schedules"] += created
    _, created = Schedule.objects.get_or_create(
        workspace=workspace,
        name="Hourly supplier portal sweep",
        defaults={
            "agent_version": versions[("web-browser", "v3")],
            "interval_seconds": 3600,
            "enabled": False,
            "inputs": {"url": "https://portal.brightline.example/login", "goal": "Check invoices"},
            "created_at": now - timedelta(days=20),
        },
    )
    result.created["schedules"] += created
    return {SCHEDULE_KEY: report}


def _batches(workspace, versions, users, specs: list[BatchSpec], runs, result) -> dict:
    starts = {}
    for run in runs:
        if run.batch:
            starts[run.batch] = min(starts.get(run.batch, run.created_at), run.created_at)
    batches = {}
    for spec in specs:
        batch, created = Batch.objects.get_or_create(
            id=spec.id,
            defaults={
                "workspace": workspace,
                "agent_version": versions.get((spec.agent, spec.version)),
                "name": spec.name,
                "created_by": users["demo"],
                "created_at": starts[spec.key],
            },
        )
        result.created["batches"] += created
        batches[spec.key] = batch
    return batches


def _insert(built: list, workspace: Workspace, result: SeedResult) -> None:
    Execution.objects.bulk_create([b.execution for b in built], batch_size=250)
    result.created["executions"] += len(built)

    # Parents before children, so every parent has its primary key when a child needs it.
    by_key = {}
    pending = [(b, i) for b in built for i in range(len(b.steps))]
    while pending:
        ready, waiting = [], []
        for b, i in pending:
            parent = b.parents.get(i)
            if parent is None or (b.execution.id, parent) in by_key:
                if parent:
                    b.steps[i].parent = by_key[(b.execution.id, parent)]
                ready.append((b, i))
            else:
                waiting.append((b, i))
        Step.objects.bulk_create([b.steps[i] for b, i in ready], batch_size=500)
        for b, i in ready:
            by_key[(b.execution.id, b.keys[i])] = b.steps[i]
        pending = waiting
    result.created["steps"] += len(by_key)

    artifacts = []
    for b in built:
        for artifact, content, step_key in b.artifacts:
            if step_key:
                artifact.step = by_key[(b.execution.id, step_key)]
            path = artifact_upload_to(artifact, artifact.name)
            # A media directory that outlived its database already has this very file.
            if not default_storage.exists(path):
                path = default_storage.save(path, ContentFile(content))
            artifact.file.name = path
            artifact.size = len(content)
            artifacts.append(artifact)
    Artifact.objects.bulk_create(artifacts, batch_size=250)
    result.created["artifacts"] += len(artifacts)

    corrections = [c for b in built for c in b.corrections]
    notes = [n for b in built for n in b.notes]
    FieldCorrection.objects.bulk_create(corrections, batch_size=500)
    ExecutionNote.objects.bulk_create(notes, batch_size=500)
    result.created["field corrections"] += len(corrections)
    result.created["notes"] += len(notes)


def seed_demo(*, now: datetime | None = None) -> SeedResult:
    now = now or timezone.now()
    runs, batch_specs = build_plan(now)
    with transaction.atomic():
        workspace, created = Workspace.objects.get_or_create(slug=SLUG, defaults={"name": NAME})
        result = SeedResult(workspace=workspace)
        result.created["workspaces"] += created
        users = _users(workspace, result)
        _model_prices(result)
        _api_keys(workspace, users["demo"], now, result)

        existing = set(Execution.objects.filter(workspace=workspace).values_list("id", flat=True))
        missing = [r for r in runs if r.id not in existing]
        if not missing:
            return result
        with_deleted = any(r.agent == DELETED_AGENT for r in missing)
        agents, versions = _agents(workspace, now, with_deleted=with_deleted, result=result)
        ctx = Context(
            workspace=workspace,
            now=now,
            agents=agents,
            versions=versions,
            users=users,
            batches=_batches(workspace, versions, users, batch_specs, runs, result),
            schedules=_schedules(workspace, versions, runs, now, result),
        )
        _insert([realise(r, ctx) for r in missing], workspace, result)
        if with_deleted:
            # Retired after its runs: they keep agent_name and lose the link.
            agents[DELETED_AGENT].delete()
        counters.rebuild(workspace)
    return result
