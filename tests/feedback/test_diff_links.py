"""The Diff tab's layout links stay on the run's own URL, whichever URL served the pane."""

import pytest
from django.urls import reverse

from tests.executions.detail_html import parse

from ..factories import ExecutionFactory, FieldCorrectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def corrected(agent_version, bob):
    execution = ExecutionFactory(agent_version=agent_version, output={"total": 1})
    FieldCorrectionFactory(
        execution=execution, path="/total", value_before=1, value_after=2, author=bob
    )
    return execution


def mode_links(response) -> dict[str, tuple[str, str]]:
    nav = parse(response.content).one("nav", cls="fb-seg")
    return {a.text: (a.attrs["href"], a.attrs["hx-push-url"]) for a in nav.select("a")}


@pytest.mark.parametrize("via", ["detail", "pane", "pane-htmx"])
def test_every_layout_link_points_at_the_runs_page(bob_client, corrected, via):
    run = corrected.get_absolute_url()
    if via == "detail":
        response = bob_client.get(f"{run}?tab=diff&mode=split")
    else:
        pane = reverse("feedback:diff", args=[corrected.pk]) + "?mode=split"
        headers = {"HTTP_HX_REQUEST": "true"} if via == "pane-htmx" else {}
        response = bob_client.get(pane, **headers)
    links = mode_links(response)
    assert links["Side by side"] == (f"{run}?tab=diff&mode=split",) * 2
    for href, pushed in links.values():
        assert href.startswith(f"{run}?tab=diff&mode=") and pushed == href
    # And the pushed URL opens the same pane in the same layout.
    again = parse(bob_client.get(links["Side by side"][0]).content)
    assert again.one("table", cls="fb-split")
