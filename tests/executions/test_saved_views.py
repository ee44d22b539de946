"""Saved views of the executions table: save, share by URL, pick, delete."""

from urllib.parse import parse_qs

import pytest

from agents.models import Role
from executions import counters
from executions.models import SavedView, Status
from tests.factories import ExecutionFactory, MembershipFactory, UserFactory

from .detail_html import parse

pytestmark = pytest.mark.django_db
URL = "/executions/"


def make(agent_version, n=1, **fields):
    made = ExecutionFactory.create_batch(n, agent_version=agent_version, **fields)
    counters.rebuild(agent_version.agent.workspace)
    return made


def test_saving_keeps_filters_and_sort_but_not_the_page(alice_client, alice, workspace):
    response = alice_client.post(
        "/executions/views/",
        {"name": "Failed, slowest", "query": "status=failed&q=&sort=-duration&page=4"},
    )
    view = SavedView.objects.get(workspace=workspace, name="Failed, slowest")
    assert view.owner == alice
    assert parse_qs(view.query) == {"status": ["failed"], "sort": ["-duration"]}
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?view={view.pk}"


def test_a_saved_view_is_a_url_that_applies_its_filters(
    alice_client, bob, agent_version, workspace, client
):
    make(agent_version, 2, status=Status.FAILED, duration_ms=10)
    make(agent_version, 3, status=Status.COMPLETED)
    view = SavedView.objects.create(
        workspace=workspace, owner=bob, name="Failures", query="status=failed&sort=-duration"
    )
    response = alice_client.get(f"{URL}?view={view.pk}")
    page = response.context["page"]
    assert page.total == 2 and page.sort == "-duration"
    doc = parse(response.content)
    assert "View: Failures" in doc.one("details", id="views-menu").one("summary").text
    assert [
        c.attrs.get("checked")
        for c in doc.select("input", attr="checked")
        if c.attrs.get("value") == "failed"
    ]
    # Paging a view keeps it, and an explicit parameter wins over the saved one.
    paged = alice_client.get(f"{URL}?view={view.pk}&sort=started")
    assert paged.context["page"].sort == "started" and paged.context["page"].total == 2
    next_href = parse(paged.content).one("span", cls="per-page").select("a")[0].attrs["href"]
    assert f"view={view.pk}" in next_href


def test_views_menu_lists_the_workspaces_views(alice_client, bob, workspace):
    SavedView.objects.create(
        workspace=workspace, owner=bob, name="Bob's view", query="status=running"
    )
    menu = parse(alice_client.get(URL).content).one("details", id="views-menu")
    links = {a.text.strip(): a.attrs["href"] for a in menu.select("a")}
    view = SavedView.objects.get(name="Bob's view")
    assert links["Bob's view"] == f"{URL}?view={view.pk}"


def test_saving_over_htmx_returns_the_menu(alice_client, workspace):
    response = alice_client.post(
        "/executions/views/",
        {"name": "Running", "query": "status=running"},
        HTTP_HX_REQUEST="true",
    )
    doc = parse(response.content)
    menu = doc.one("details", id="views-menu")
    assert "View: Running" in menu.one("summary").text
    assert "Running" in [a.text.strip() for a in menu.select("a")]


def test_same_name_updates_your_own_view_and_refuses_someone_elses(
    alice_client, alice, bob, workspace
):
    SavedView.objects.create(workspace=workspace, owner=alice, name="Mine", query="status=failed")
    SavedView.objects.create(workspace=workspace, owner=bob, name="Bob's", query="status=running")
    alice_client.post("/executions/views/", {"name": "Mine", "query": "status=completed"})
    assert SavedView.objects.get(name="Mine").query == "status=completed"
    refused = alice_client.post(
        "/executions/views/", {"name": "Bob's", "query": "status=pending"}, HTTP_HX_REQUEST="true"
    )
    assert (
        "already a view saved by bob" in parse(refused.content).one("p", id="save-view-error").text
    )
    assert SavedView.objects.get(name="Bob's").query == "status=running"


def test_a_view_needs_a_name(alice_client):
    response = alice_client.post(
        "/executions/views/", {"name": "  ", "query": "status=failed"}, HTTP_HX_REQUEST="true"
    )
    assert "Give the view a name" in parse(response.content).one("p", id="save-view-error").text
    assert not SavedView.objects.exists()


def test_only_the_owner_or_an_admin_deletes_a_view(client, alice, bob, workspace):
    view = SavedView.objects.create(workspace=workspace, owner=alice, name="A", query="")
    client.force_login(bob)  # a reviewer, not the owner
    client.post(f"/executions/views/{view.pk}/delete/")
    assert SavedView.objects.filter(pk=view.pk).exists()
    other = SavedView.objects.create(workspace=workspace, owner=bob, name="B", query="")
    client.post(f"/executions/views/{other.pk}/delete/")
    assert not SavedView.objects.filter(pk=other.pk).exists()
    client.force_login(alice)  # admin of the workspace
    client.post(f"/executions/views/{view.pk}/delete/")
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_another_workspaces_view_is_not_found(alice_client, charlie, other_workspace):
    theirs = SavedView.objects.create(
        workspace=other_workspace, owner=charlie, name="C", query="status=failed"
    )
    response = alice_client.get(f"{URL}?view={theirs.pk}")
    assert response.status_code == 200
    assert "no saved view" in response.context["view_notice"]
    assert response.context["page"].filterset.applied() == {}
    assert alice_client.post(f"/executions/views/{theirs.pk}/delete/").status_code == 404
    assert SavedView.objects.filter(pk=theirs.pk).exists()


def test_a_bad_view_id_is_explained(alice_client):
    response = alice_client.get(f"{URL}?view=abc")
    assert "no saved view" in parse(response.content).text


def test_viewers_may_save_views_too(client, workspace):
    user = UserFactory(username="vera")
    MembershipFactory(user=user, workspace=workspace, role=Role.VIEWER)
    client.force_login(user)
    client.post("/executions/views/", {"name": "Vera's", "query": "status=failed"})
    assert SavedView.objects.filter(name="Vera's", owner=user).exists()


def test_paging_a_view_over_htmx_pushes_the_view_and_the_page(
    alice_client, agent_version, workspace
):
    make(agent_version, 25, status=Status.FAILED)
    view = SavedView.objects.create(
        workspace=workspace, owner=UserFactory(username="dana"), name="F", query="status=failed"
    )
    response = alice_client.get(f"{URL}?view={view.pk}&page=2", HTTP_HX_REQUEST="true")
    assert response["HX-Push-Url"] == f"{URL}?view={view.pk}&page=2"
    assert response.context["page"].number == 2
    only_view = alice_client.get(f"{URL}?view={view.pk}", HTTP_HX_REQUEST="true")
    assert only_view["HX-Push-Url"] == f"{URL}?view={view.pk}"
