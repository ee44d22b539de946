"""The interactive API docs and the API keys page, in chromium with the CSP on."""

import hashlib

import pytest
from django.test import Client

from agents.models import ApiKey

pytestmark = pytest.mark.browser


def test_the_api_docs_render_offline_under_the_csp(page, live_server):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/executions" in paths
    assert "/api/v1/executions/{execution_id}/steps" in paths
    # Open one operation: its schema and "Try it out" are rendered by Swagger UI's JS.
    page.locator(".opblock-summary", has_text="/api/v1/executions/{execution_id}/wait").click()
    page.wait_for_selector("text=Try it out")
    page.screenshot(path="screens/ingest_browser_api_docs.png")
    assert page.errors == []
    assert requested and all(url.startswith(live_server.url) for url in requested)


def test_an_admin_creates_a_key_that_works_once_shown(page, workspace):
    page.goto("/agents/")
    page.get_by_role("link", name="API keys").click()
    page.fill("#apikey-name", "ci runtime")
    page.get_by_role("button", name="Create key").click()
    raw = page.locator("#apikey-raw").inner_text()
    assert raw.startswith("rb_")
    page.screenshot(path="screens/ingest_browser_api_key_created.png")
    # The key answers the API for this workspace.
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/executions").status_code == 200
    # Shown once: the page never shows it again, and only its hash is stored.
    page.goto("/workspace/api-keys/")
    assert raw not in page.content()
    # The row holds the key's SHA-256 and its first 10 characters, and no column
    # holds the key itself.
    row = ApiKey.objects.filter(name="ci runtime").values().get()
    assert row["hashed_key"] == hashlib.sha256(raw.encode()).hexdigest()
    assert row["prefix"] == raw[:10] and len(raw) > 40
    assert not [column for column, value in row.items() if raw in str(value)]
    page.get_by_role("button", name="Revoke ci runtime").click()
    page.wait_for_selector("text=Revoked “ci runtime”")
    assert api.get("/api/v1/executions").status_code == 401
    assert page.errors == []
