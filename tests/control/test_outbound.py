"""Webhooks cannot be turned against Runboard's own network (issue 11, part 1).

Only http(s) URLs are taken, at every door; at send time every address the name
resolves to must be public or on WEBHOOK_ALLOWED_TARGETS; redirects are answers, not
followed; only a short text excerpt of an answer is kept, nothing for a refused one.
Receivers are real HTTP servers (pytest-httpserver) on loopback.
"""

import ipaddress
import json
import socket

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from werkzeug import Response

from agents.models import AgentVersion
from executions.control import outbound
from executions.control import services as control
from executions.models import Execution, Status, WebhookDelivery

from ..factories import AgentFactory, AgentVersionFactory, ApiKeyFactory, UserFactory
from .conftest import SECRET, run_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("db_queue")]

LOOPBACK = ["127.0.0.1", "::1"]  # what `localhost` may resolve to
BAD_URLS = ["file:///etc/hostname", "gopher://127.0.0.1:70/_x", "ftp://example.com/hook"]


@pytest.fixture
def api(client, workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


def execute(version) -> Execution:
    """Execute on the real queue and let a worker make the attempts."""
    execution = control.execution_execute(
        workspace=version.agent.workspace, agent_version=version, inputs={}
    )
    run_worker()
    return execution


def hook(workspace, url) -> AgentVersion:
    return AgentVersionFactory(agent__workspace=workspace, webhook_url=url, webhook_secret=SECRET)


# --- only http(s) is taken ----------------------------------------------------------


@pytest.mark.parametrize("url", BAD_URLS)
def test_the_api_refuses_a_webhook_url_that_is_not_http(api, url):
    response = api.post(
        "/api/v1/execute",
        json.dumps({"config": {"prompt": "p"}, "webhook_url": url}),
        content_type="application/json",
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["webhook_url"]
    assert "http:// or https://" in errors[0]["message"]
    assert not Execution.objects.exists() and not AgentVersion.objects.exists()


@pytest.mark.parametrize("url", BAD_URLS)
def test_the_admin_refuses_a_webhook_url_that_is_not_http(client, workspace, url):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    agent = AgentFactory(workspace=workspace)
    response = client.post(
        reverse("admin:agents_agentversion_add"),
        {
            "agent": agent.pk,
            "version": "v9",
            "webhook_url": url,
            "webhook_secret": "",
            "config": "{}",
            "input_schema": "{}",
            "time_limit_seconds": "",
            "description": "",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "webhook_url" in errors
    assert not AgentVersion.objects.filter(version="v9").exists()


@pytest.mark.parametrize("url", BAD_URLS)
def test_the_model_refuses_a_webhook_url_that_is_not_http(agent_version, url):
    agent_version.webhook_url = url
    with pytest.raises(ValidationError) as caught:
        agent_version.full_clean()
    assert "webhook_url" in caught.value.message_dict


def test_the_execute_service_refuses_a_non_http_inline_webhook(workspace):
    with pytest.raises(control.InvalidRequest, match="webhook_url"):
        control.execution_execute(
            workspace=workspace, inputs={}, config={"p": 1}, webhook_url="file:///etc/passwd"
        )


def test_a_stored_file_url_is_refused_at_send_time_and_nothing_is_read(workspace):
    # A row written before the validator existed (or straight into the database).
    version = hook(workspace, "http://example.com/x")
    AgentVersion.objects.filter(pk=version.pk).update(webhook_url="file:///etc/hostname")
    version.refresh_from_db()
    execution = execute(version)
    row = WebhookDelivery.objects.get(execution=execution, attempt=1)
    assert row.error.startswith("refused: the URL must be an http:// or https:// URL")
    assert row.response_body == "" and row.status_code is None


# --- addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "fe80::1",
        "fc00::1",
        "240.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert outbound.address_problem(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert outbound.address_problem(ipaddress.ip_address(address)) is None


def test_loopback_is_refused_by_default(workspace, httpserver, settings):
    assert settings.WEBHOOK_ALLOWED_TARGETS == []
    httpserver.expect_request("/hook").respond_with_data("secret", content_type="text/plain")
    execution = execute(hook(workspace, f"http://127.0.0.1:{httpserver.port}/hook"))
    row = WebhookDelivery.objects.get(execution=execution, attempt=1)
    assert row.error == ("refused: 127.0.0.1 is a loopback address (see WEBHOOK_ALLOWED_TARGETS)")
    assert row.response_body == "" and row.status_code is None and not row.succeeded
    assert httpserver.log == []


def test_a_name_resolving_to_loopback_is_refused_after_dns(workspace, httpserver, settings):
    settings.WEBHOOK_ALLOWED_TARGETS = []
    httpserver.expect_request("/hook").respond_with_data("secret", content_type="text/plain")
    url = f"http://localhost:{httpserver.port}/hook"
    execution = execute(hook(workspace, url))
    row = WebhookDelivery.objects.get(execution=execution, attempt=1)
    assert row.error.startswith("refused: localhost resolves to ")
    assert "a loopback address" in row.error
    assert row.response_body == ""
    assert httpserver.log == []


def test_the_allow_list_takes_networks_and_hosts(httpserver, settings):
    httpserver.expect_request("/hook").respond_with_data("ok", content_type="text/plain")
    url = f"http://127.0.0.1:{httpserver.port}/hook"
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.0/8"]
    assert outbound.post(url, b"{}", {}, timeout=5).status == 200
    settings.WEBHOOK_ALLOWED_TARGETS = ["localhost"]
    named = f"http://localhost:{httpserver.port}/hook"
    assert outbound.post(named, b"{}", {}, timeout=5).status == 200
    # The host name is allowed, not every address: the bare IP is still refused.
    assert outbound.post(url, b"{}", {}, timeout=5).error.startswith("refused:")


def test_a_name_with_one_internal_address_among_public_ones_is_refused(monkeypatch, settings):
    settings.WEBHOOK_ALLOWED_TARGETS = []
    # No DNS server runs here whose answers we control: the resolver is the one fake.
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80)),
    ]
    monkeypatch.setattr(outbound.socket, "getaddrinfo", lambda *a, **k: answers)
    outcome = outbound.post("http://mixed.example/hook", b"{}", {}, timeout=5)
    assert outcome.error.startswith("refused: mixed.example resolves to 10.0.0.7, a private")


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    httpserver, monkeypatch, settings
):
    """Resolved once, connected to that address: a later DNS answer cannot swap it."""
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1"]
    seen = []
    httpserver.expect_request("/hook").respond_with_handler(
        lambda request: seen.append(request.headers["Host"]) or Response("ok")
    )
    calls = []

    def resolver(host, port, *args, **kwargs):
        if not host[0].isdigit():  # socket.create_connection resolves the IP again
            calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", resolver)
    url = f"http://runtime.invalid:{httpserver.port}/hook"
    assert outbound.post(url, b"{}", {}, timeout=5).status == 200
    assert calls == ["runtime.invalid"]  # one resolution, the checked one
    assert seen == [f"runtime.invalid:{httpserver.port}"]


# --- answers ------------------------------------------------------------------------


def test_a_redirect_is_recorded_and_not_followed(workspace, httpserver, settings):
    settings.WEBHOOK_ALLOWED_TARGETS = LOOPBACK
    settings.RUNBOARD_WEBHOOK_MAX_ATTEMPTS = 1
    inner = f"http://localhost:{httpserver.port}/internal"
    httpserver.expect_request("/hook").respond_with_response(
        Response("moved", status=302, headers={"Location": inner})
    )
    httpserver.expect_request("/internal").respond_with_data("internal secret")
    execution = execute(hook(workspace, httpserver.url_for("/hook")))
    row = WebhookDelivery.objects.get(execution=execution)
    assert row.status_code == 302 and not row.succeeded
    assert row.error == f"HTTP 302 redirect to {inner}: not followed"
    assert [request.path for request, _ in httpserver.log] == ["/hook"]
    assert "internal secret" not in row.response_body
    execution.refresh_from_db()
    assert execution.status == Status.FAILED


def test_only_a_short_text_excerpt_of_an_answer_is_kept(workspace, httpserver, settings):
    settings.WEBHOOK_ALLOWED_TARGETS = LOOPBACK
    httpserver.expect_request("/text").respond_with_data("é" * 3000, content_type="text/plain")
    httpserver.expect_request("/binary").respond_with_data(
        b"\x89PNG\r\n" + b"x" * 3000, content_type="image/png"
    )
    httpserver.expect_request("/json").respond_with_json({"ok": True, "pad": "y" * 2000})
    text = WebhookDelivery.objects.get(
        execution=execute(hook(workspace, httpserver.url_for("/text")))
    )
    assert text.response_body == "é" * outbound.EXCERPT_CHARS and text.succeeded
    binary = WebhookDelivery.objects.get(
        execution=execute(hook(workspace, httpserver.url_for("/binary")))
    )
    assert binary.response_body == "" and binary.status_code == 200 and binary.succeeded
    answer = WebhookDelivery.objects.get(
        execution=execute(hook(workspace, httpserver.url_for("/json")))
    )
    assert len(answer.response_body) == outbound.EXCERPT_CHARS
    assert json.loads(answer.response_body[:40].split(",")[0] + "}") == {"ok": True}


def test_settings_read_the_allow_list_from_the_environment(monkeypatch):
    import importlib

    import config.settings as module

    monkeypatch.setenv("WEBHOOK_ALLOWED_TARGETS", " 127.0.0.1, 10.0.0.0/8 ,runtime.internal,")
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.setenv("ALLOWED_HOSTS", "x")
    try:
        assert importlib.reload(module).WEBHOOK_ALLOWED_TARGETS == [
            "127.0.0.1",
            "10.0.0.0/8",
            "runtime.internal",
        ]
    finally:
        monkeypatch.delenv("WEBHOOK_ALLOWED_TARGETS")
        importlib.reload(module)
