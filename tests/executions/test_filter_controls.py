"""Filter controls a newcomer tripped on: the Version drop-down follows the agent; a
bad date or number stays as typed and is marked; the keyboard hint needs JavaScript;
/favicon.ico is found."""

import pytest

from executions import counters
from tests.factories import AgentVersionFactory, ExecutionFactory

from .detail_html import parse

pytestmark = pytest.mark.django_db

URL = "/executions/"


@pytest.fixture
def two_agents(workspace, agent_version):
    other = AgentVersionFactory(agent__workspace=workspace, agent__name="zeta-bot", version="v9")
    ExecutionFactory(agent_version=agent_version)
    ExecutionFactory(agent_version=other)
    counters.rebuild(workspace)
    return agent_version, other


def version_options(response) -> dict[str, bool]:
    select = parse(response.content).one("select", id="id_version")
    return {o.text: "hidden" in o.attrs for o in select.select("option")}


def test_the_version_filter_offers_the_chosen_agents_versions(alice_client, two_agents):
    _, other = two_agents
    everything = version_options(alice_client.get(URL))
    assert everything == {
        "All versions": False,
        "invoice-extractor:v1": False,
        "zeta-bot:v9": False,
    }
    narrowed = version_options(alice_client.get(f"{URL}?agent=invoice-extractor"))
    assert narrowed == {"All versions": False, "invoice-extractor:v1": False, "zeta-bot:v9": True}
    # A version already chosen stays visible, whatever the agent.
    kept = version_options(alice_client.get(f"{URL}?agent=invoice-extractor&version={other.pk}"))
    assert kept["zeta-bot:v9"] is False


@pytest.mark.parametrize(
    ("query", "field", "typed"),
    [
        ("start=2026-13-45", "start", "2026-13-45"),
        ("end=yesterday", "end", "yesterday"),
        ("min_duration=abc", "min_duration", "abc"),
    ],
)
def test_a_bad_value_is_kept_as_typed_and_marked(alice_client, agent_version, query, field, typed):
    response = alice_client.get(f"{URL}?{query}")
    assert response.status_code == 200
    doc = parse(response.content)
    control = doc.one("input", id=f"id_{field}")
    assert control.attrs["value"] == typed
    assert control.attrs["type"] == "text"  # a date or number input would blank it
    assert control.attrs["aria-invalid"] == "true" and "is-invalid" in control.classes
    assert doc.one("p", id=f"err-{field}").text.strip()


def test_the_keyboard_hint_is_hidden_until_script_shows_it(alice_client, agent_version):
    hint = parse(alice_client.get(URL).content).one("span", cls="kbd-hint")
    assert "hidden" in hint.attrs


def test_favicon_ico_redirects_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("img/favicon.svg")
