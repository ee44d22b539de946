import pytest
from django.urls import reverse

from agents.selectors import SESSION_KEY
from executions import counters

from ..factories import AgentVersionFactory, ExecutionFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_every_dashboard_url_requires_login(client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version)
    for url in [
        reverse("executions:list"),
        reverse("executions:detail", args=[execution.pk]),
        reverse("agents:list"),
        reverse("agents:detail", args=[agent_version.agent.slug]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_login_page_renders_in_the_dashboards_look(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in to Runboard" in response.content
    assert b"css/app.css" in response.content


def test_logging_in_lands_on_executions(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "password"})
    assert response.status_code == 302
    assert response["Location"] == "/executions/"


def test_it_hides_other_workspaces_executions(alice_client, agent_version, charlie):
    mine = ExecutionFactory(agent_version=agent_version)
    theirs = ExecutionFactory(agent_version__agent__workspace=charlie.memberships.get().workspace)
    counters.rebuild()
    response = alice_client.get(reverse("executions:list"))
    ids = {e.pk for e in response.context["page"].entries}
    assert mine.pk in ids
    assert theirs.pk not in ids


def test_another_workspaces_execution_is_404(alice_client, charlie):
    theirs = ExecutionFactory(agent_version__agent__workspace=charlie.memberships.get().workspace)
    response = alice_client.get(reverse("executions:detail", args=[theirs.pk]))
    assert response.status_code == 404


def test_another_workspaces_agent_is_404(alice_client, charlie):
    theirs = AgentVersionFactory(agent__workspace=charlie.memberships.get().workspace)
    response = alice_client.get(reverse("agents:detail", args=[theirs.agent.slug]))
    assert response.status_code == 404


def test_a_user_without_workspace_sees_nothing(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x")
    client.force_login(user)
    response = client.get(reverse("executions:list"))
    assert response.status_code == 403
    assert b"not in any workspace" in response.content


def test_session_cannot_select_a_workspace_the_user_left(alice_client, alice, other_workspace):
    session = alice_client.session
    session[SESSION_KEY] = other_workspace.pk
    session.save()
    response = alice_client.get(reverse("executions:list"))
    assert response.context["current_workspace"].slug == "alices-team"


def test_switching_workspace(alice_client, alice, other_workspace):
    MembershipFactory(user=alice, workspace=other_workspace)
    theirs = ExecutionFactory(agent_version__agent__workspace=other_workspace)
    counters.rebuild()
    response = alice_client.post(reverse("workspace_switch"), {"slug": other_workspace.slug})
    assert response.status_code == 302
    response = alice_client.get(reverse("executions:list"))
    assert [e.pk for e in response.context["page"].entries] == [theirs.pk]


def test_switching_to_a_workspace_one_is_not_in_is_404(alice_client, other_workspace):
    response = alice_client.post(reverse("workspace_switch"), {"slug": other_workspace.slug})
    assert response.status_code == 404
