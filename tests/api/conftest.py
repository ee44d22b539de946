import pytest

from tests.factories import ApiKeyFactory


@pytest.fixture
def raw_key(workspace):
    """A live API key of alice's workspace, as the runtime would hold it."""
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return raw


@pytest.fixture
def other_raw_key(other_workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=other_workspace)
    return raw


@pytest.fixture
def api(client, raw_key):
    """The Django test client with alice's workspace key on every request."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    return client


@pytest.fixture
def other_api(client, other_raw_key):
    from django.test import Client

    other = Client()
    other.defaults["HTTP_AUTHORIZATION"] = f"Bearer {other_raw_key}"
    return other
