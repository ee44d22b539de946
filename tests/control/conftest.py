"""A real webhook receiver (pytest-httpserver) and the real database queue for the
control-plane tests."""

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django_tasks_db.management.commands.db_worker import Worker
from werkzeug import Request, Response

from agents.models import Role

from ..factories import AgentVersionFactory, MembershipFactory, UserFactory

SECRET = "whsec-test-secret"
BASE_DIR = Path(settings.BASE_DIR)


@dataclass
class Received:
    body: bytes
    headers: dict

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.headers.get("X-Runboard-Event", "")


@dataclass
class Receiver:
    """A runtime's webhook endpoint: records every request, answers from a script
    of status codes (the last one repeats)."""

    url: str
    statuses: list = field(default_factory=lambda: [200])
    requests: list = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def handle(self, request: Request) -> Response:
        self.requests.append(Received(request.get_data(), dict(request.headers)))
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        self.arrived.set()
        return Response(json.dumps({"ok": status < 300}), status=status)

    def executions(self, event: str = "execute") -> list[str]:
        return [r.json["execution"]["id"] for r in self.requests if r.event == event]


@pytest.fixture
def receiver(httpserver, settings):
    # The receiver listens on loopback, which webhooks may not reach by default: the
    # test allows it the way `make run` allows the demo runtime.
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1", "::1"]
    receiver = Receiver(url=httpserver.url_for("/hook"))
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)
    return receiver


@pytest.fixture
def hooked_version(workspace, receiver):
    """An agent version whose runtime is the receiver."""
    return AgentVersionFactory(
        agent__workspace=workspace,
        agent__name="invoice-extractor",
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        input_schema={
            "type": "object",
            "properties": {"file": {"type": "string"}, "pages": {"type": "integer"}},
            "required": ["file"],
        },
    )


@pytest.fixture
def db_queue(settings):
    """The production queue (django-tasks-db) instead of the suite's immediate backend,
    with retries due at once so a test can drain them."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.RUNBOARD_WEBHOOK_BACKOFF_SECONDS = 0
    return settings


def run_worker(max_tasks: int | None = None) -> None:
    """Drain the queue with django-tasks-db's own worker, in this process."""
    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=max_tasks,
        worker_id="test-worker",
        excluded_queue_names=[],
    ).run()


@pytest.fixture
def reviewer(workspace):
    user = UserFactory(username="rita")
    MembershipFactory(user=user, workspace=workspace, role=Role.REVIEWER)
    return user


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.open: list[dict] = []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, **{k: v or "" for k, v in attrs}, "text": ""}
        self.elements.append(element)
        if tag not in {"input", "br", "img", "link", "meta", "hr"}:
            self.open.append(element)

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self.open:
            element["text"] += data


def elements(html: bytes | str, tag: str, **attrs) -> list[dict]:
    """Parsed elements of one tag whose attributes match: each a dict of its attributes
    plus "text" (its text content, stripped)."""
    collector = _Collector()
    collector.feed(html.decode() if isinstance(html, bytes) else html)
    found = []
    for element in collector.elements:
        if element["tag"] == tag and all(element.get(k) == v for k, v in attrs.items()):
            found.append({**element, "text": " ".join(element["text"].split())})
    return found


def form_actions(html) -> set[str]:
    """Every URL a form on the page posts to (its action, and its buttons' formaction)."""
    actions = {f["action"] for f in elements(html, "form") if f.get("method") == "post"}
    return actions | {b["formaction"] for b in elements(html, "button") if b.get("formaction")}


# --- real processes ------------------------------------------------------------------


@pytest.fixture
def process_env(tmp_path):
    """Environment for manage.py subprocesses that share this test's database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "tests-only",
        "ALLOWED_HOSTS": "localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        # The worker delivers to a pytest-httpserver on loopback.
        "WEBHOOK_ALLOWED_TARGETS": "127.0.0.1,::1",
    }
    if connection.vendor == "postgresql":
        url = urlsplit(os.environ["DATABASE_URL"])
        test_db = "/" + connection.settings_dict["NAME"]
        env["DATABASE_URL"] = urlunsplit(url._replace(path=test_db))
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(tmp_path / "killtest.sqlite3")
        manage(env, "migrate", "--no-input", "-v", "0")
    return env


def manage(env, *args, timeout=120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
