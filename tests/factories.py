from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.models import Agent, AgentVersion, ApiKey, Membership, Role, Schedule, Workspace
from executions.models import Artifact, Batch, Execution, Status, Step, StepKind
from feedback.models import ExecutionNote, FieldCorrection


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("password")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.VIEWER


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"agent-{n}")


class AgentVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentVersion

    agent = factory.SubFactory(AgentFactory)
    version = "v1"
    config = factory.LazyFunction(lambda: {"model": "gpt-4o-mini", "prompt": "Extract."})


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule

    agent_version = factory.SubFactory(AgentVersionFactory)
    workspace = factory.LazyAttribute(lambda s: s.agent_version.agent.workspace)
    name = factory.Sequence(lambda n: f"Schedule {n}")
    cron = "0 7 * * *"


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Batch {n}")


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    agent_version = factory.SubFactory(AgentVersionFactory)
    agent = factory.LazyAttribute(lambda e: e.agent_version.agent if e.agent_version else None)
    workspace = factory.LazyAttribute(
        lambda e: e.agent.workspace if e.agent else WorkspaceFactory()
    )
    agent_name = factory.LazyAttribute(lambda e: e.agent.name if e.agent else "removed-agent")
    version_name = factory.LazyAttribute(
        lambda e: e.agent_version.version if e.agent_version else ""
    )
    status = Status.COMPLETED
    input = factory.LazyFunction(lambda: {"file": "https://example.com/invoice.pdf"})
    output = factory.LazyFunction(lambda: {"invoice_id": "INV-1", "total": 10.5})
    created_at = factory.LazyFunction(timezone.now)
    started_at = factory.LazyAttribute(lambda e: e.created_at)
    completed_at = factory.LazyAttribute(
        lambda e: (
            e.created_at + timedelta(seconds=3)
            if e.status in {"completed", "failed", "cancelled", "timed_out", "rejected"}
            else None
        )
    )
    duration_ms = factory.LazyAttribute(lambda e: 3000 if e.completed_at else None)
    cost_usd = Decimal("0.0123")
    credits = Decimal("1.5")


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    execution = factory.SubFactory(ExecutionFactory)
    sequence = factory.Sequence(lambda n: n)
    kind = StepKind.THOUGHT
    name = factory.Sequence(lambda n: f"step {n}")


class ArtifactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Artifact

    execution = factory.SubFactory(ExecutionFactory)
    workspace = factory.LazyAttribute(lambda a: a.execution.workspace)
    name = "screenshot.png"
    content_type = "image/png"
    file = factory.django.ImageField(filename="screenshot.png", width=40, height=30)


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Call ApiKeyFactory.create_with_raw() to get the raw key as well."""

    class Meta:
        model = ApiKey

    workspace = factory.SubFactory(WorkspaceFactory)
    name = "test key"

    @classmethod
    def create_with_raw(cls, **kwargs) -> tuple[ApiKey, str]:
        raw, prefix, hashed = ApiKey.generate()
        return cls(prefix=prefix, hashed_key=hashed, **kwargs), raw


class FieldCorrectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldCorrection

    execution = factory.SubFactory(ExecutionFactory)
    workspace = factory.LazyAttribute(lambda c: c.execution.workspace)
    path = "/total"
    value_before = 10.5
    value_after = 11.5


class ExecutionNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutionNote

    execution = factory.SubFactory(ExecutionFactory)
    workspace = factory.LazyAttribute(lambda n: n.execution.workspace)
    rating = "up"
    text = "Looks right."
