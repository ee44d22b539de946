import pytest

from tests.factories import ApiKeyFactory


@pytest.fixture
def api(client, workspace):
    """The Django test client with a key of alice's workspace on every request."""
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client
