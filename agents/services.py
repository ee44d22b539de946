"""Writes for agents and API keys.

Agents register themselves: the first execution (JSON API or OTLP) that names an
unknown agent or version creates it, because runtimes are deployed independently of
this dashboard and refusing their first report would lose it.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.text import slugify

from .models import Agent, AgentVersion, ApiKey, Workspace

AGENT_NAME_MAX = Agent._meta.get_field("name").max_length
VERSION_MAX = AgentVersion._meta.get_field("version").max_length

# (name, version or None) -> (agent, version or None)
AgentKey = tuple[str, str | None]


class AgentNameError(ValueError):
    """An agent reference that cannot name an agent (empty, too long)."""


def parse_agent_ref(ref: str, version: str | None = None) -> AgentKey:
    """`name:version` (or a name and a separate version) as a (name, version) pair.

    The version is split off at the last colon, so names may contain slashes
    (`image/blur-faces:v2`). A separate `version` wins over one in the name.
    """
    name = (ref or "").strip()
    if version is None and ":" in name:
        name, _, version = name.rpartition(":")
        name = name.strip()
    version = (version or "").strip() or None
    if not name:
        raise AgentNameError("The agent name is empty; send it as 'name' or 'name:version'.")
    if len(name) > AGENT_NAME_MAX:
        raise AgentNameError(f"The agent name is longer than {AGENT_NAME_MAX} characters.")
    if version is not None and len(version) > VERSION_MAX:
        raise AgentNameError(f"The agent version is longer than {VERSION_MAX} characters.")
    return name, version


def _agent_create(*, workspace: Workspace, name: str) -> Agent:
    """Get or create the agent called `name`, finding a free slug if another name took it."""
    base = slugify(name)[:190] or "agent"
    for attempt in range(1, 50):
        slug = base if attempt == 1 else f"{base}-{attempt}"
        try:
            with transaction.atomic():
                return Agent.objects.get_or_create(
                    workspace=workspace, name=name, defaults={"slug": slug}
                )[0]
        except IntegrityError:
            # Either a concurrent writer created this very agent (found next time
            # round), or the slug belongs to another name: try the next suffix.
            existing = Agent.objects.filter(workspace=workspace, name=name).first()
            if existing is not None:
                return existing
    raise IntegrityError(f"No free slug for agent {name!r}.")


def _version_create(*, agent: Agent, version: str) -> AgentVersion:
    try:
        with transaction.atomic():
            return AgentVersion.objects.get_or_create(agent=agent, version=version)[0]
    except IntegrityError:
        return AgentVersion.objects.get(agent=agent, version=version)


def agents_resolve(
    *, workspace: Workspace, keys: set[AgentKey]
) -> dict[AgentKey, tuple[Agent, AgentVersion | None]]:
    """The agent and version for each (name, version) pair, created on first use.

    A pair without a version resolves to the agent's most recent version, or to no
    version when the agent has none. Two queries when everything exists already,
    whatever the number of pairs, so a batch of traces does not query per span.
    """
    if not keys:
        return {}
    names = {name for name, _ in keys}
    agents = {a.name: a for a in Agent.objects.filter(workspace=workspace, name__in=names)}
    for name in sorted(names - agents.keys()):
        agents[name] = _agent_create(workspace=workspace, name=name)

    versions: dict[tuple[int, str], AgentVersion] = {}
    latest: dict[int, AgentVersion] = {}
    for v in AgentVersion.objects.filter(agent__in=list(agents.values())).order_by("created_at"):
        versions[(v.agent_id, v.version)] = v
        latest[v.agent_id] = v  # ordered by created_at, so the last one wins

    resolved: dict[AgentKey, tuple[Agent, AgentVersion | None]] = {}
    for name, version in keys:
        agent = agents[name]
        if version is None:
            found = latest.get(agent.pk)
        else:
            found = versions.get((agent.pk, version))
            if found is None:
                found = versions[(agent.pk, version)] = _version_create(
                    agent=agent, version=version
                )
        if found is not None:
            found.agent = agent
        resolved[(name, version)] = (agent, found)
    return resolved


def agent_resolve(
    *, workspace: Workspace, name: str, version: str | None = None
) -> tuple[Agent, AgentVersion | None]:
    key = parse_agent_ref(name, version)
    return agents_resolve(workspace=workspace, keys={key})[key]


def api_key_create(*, workspace: Workspace, name: str, created_by=None) -> tuple[ApiKey, str]:
    """A new key and its raw value. The raw value is never stored: show it once."""
    try:
        name = forms.CharField(required=False).clean(name or "")
    except ValidationError as exc:
        raise ValueError(f"Name: {' '.join(exc.messages)}") from None
    if not name:
        raise ValueError("Give the key a name, so that you can tell it apart later.")
    raw, prefix, hashed = ApiKey.generate()
    key = ApiKey.objects.create(
        workspace=workspace,
        name=name[: ApiKey._meta.get_field("name").max_length],
        prefix=prefix,
        hashed_key=hashed,
        created_by=created_by,
    )
    return key, raw


def api_key_revoke(*, workspace: Workspace, pk: int) -> ApiKey:
    """Revoke a key of this workspace (another workspace's key is a 404). Idempotent."""
    key = ApiKey.objects.filter(workspace=workspace, pk=pk).first()
    if key is None:
        raise Http404("No such API key in this workspace.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=key.revoked_at)
    return key


def api_key_touch(key: ApiKey) -> None:
    """Record use, at most once a minute per key, so each request does not write."""
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
