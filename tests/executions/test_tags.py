"""Tags: the service, the table's tag= filter and chips, the bulk action, the API."""

import pytest
from django.test import Client
from django.urls import reverse

from executions.tags.models import ExecutionTag
from executions.tags.services import TagError, tags_add, tags_remove
from tests.factories import ApiKeyFactory, ExecutionFactory


@pytest.fixture
def runs(agent_version):
    return ExecutionFactory.create_batch(3, agent_version=agent_version)


def test_tags_are_added_once_and_only_in_the_workspace(workspace, other_workspace, runs):
    foreign = ExecutionFactory(agent_version__agent__workspace=other_workspace)
    ids = [r.pk for r in runs] + [foreign.pk]
    assert tags_add(workspace=workspace, executions=ids, names=["Wrong-Total", "x"]) == 6
    assert tags_add(workspace=workspace, executions=ids, names=["wrong-total"]) == 0
    assert not ExecutionTag.objects.filter(execution=foreign).exists()
    assert tags_remove(workspace=workspace, executions=ids[:1], names=["x"]) == 1
    with pytest.raises(TagError) as exc:
        tags_add(workspace=workspace, executions=ids, names=["no spaces allowed"])
    assert exc.value.field == "tags"


def test_the_table_filters_by_every_tag_named_and_shows_chips(alice_client, workspace, runs):
    a, b, _c = runs
    tags_add(workspace=workspace, executions=[a.pk, b.pk], names=["urgent"])
    tags_add(workspace=workspace, executions=[b.pk], names=["pdf"])
    one = alice_client.get("/executions/", {"tag": "urgent"})
    assert {r.pk for r in one.context["table"].data} == {a.pk, b.pk}
    both = alice_client.get("/executions/?tag=urgent&tag=pdf")
    assert [r.pk for r in both.context["table"].data] == [b.pk]
    html = both.content.decode()
    assert 'class="chip chip-tag" href="?tag=pdf"' in html
    assert '<input type="hidden" name="tag" value="urgent">' in html
    bad = alice_client.get("/executions/", {"tag": "Not A Tag!"})
    assert "is not a tag name" in bad.content.decode()


def test_bulk_tagging_from_the_table(client, operator, viewer, runs):
    client.force_login(operator)
    ids = [str(r.pk) for r in runs[:2]]
    page = client.get(reverse("tags_bulk"), {"ids": ids})
    assert len(page.context["runs"]) == 2
    response = client.post(reverse("tags_bulk"), {"ids": ids, "tags": "a b", "action": "add"})
    assert response.status_code == 302
    assert ExecutionTag.objects.count() == 4
    bad = client.post(reverse("tags_bulk"), {"ids": ids, "tags": "A!", "action": "add"})
    assert bad.status_code == 400 and "tags" in bad.context["errors"]
    client.force_login(viewer)
    assert client.post(reverse("tags_bulk"), {"ids": ids, "tags": "c"}).status_code == 403


def test_tags_api(workspace, other_workspace, alice, runs):
    _key, raw = ApiKeyFactory.create_with_raw(workspace=workspace, created_by=alice)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = f"/api/v1/executions/{runs[0].pk}/tags"
    response = api.post(url, {"add": ["b", "a"]}, content_type="application/json")
    assert response.json()["tags"] == ["a", "b"]
    response = api.post(url, {"remove": ["a"]}, content_type="application/json")
    assert response.json()["tags"] == ["b"]
    bad = api.post(url, {"add": ["NO WAY"]}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "add"
    foreign = ExecutionFactory(agent_version__agent__workspace=other_workspace)
    assert api.get(f"/api/v1/executions/{foreign.pk}/tags").status_code == 404
