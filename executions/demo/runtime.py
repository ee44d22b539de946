"""A small agent runtime for the demo: it really receives Runboard's webhooks, checks
their signatures, and reports its work back through the JSON API with an API key,
like a real runtime would (it never touches the database while it works).

On start it points the demo workspace's agent versions at itself (webhook URL and a
secret) and makes itself an API key. Then, for each `execute` webhook it plays one
run: thoughts, model and tool calls, a browser screenshot, sometimes an approval
checkpoint (waiting for the reviewer's decision), sometimes a failure. `cancel`
stops a run; `approved` and `rejected` settle a checkpoint. A duplicate delivery of a
run it already has is ignored, by execution id.

An input may steer a run: {"demo": {"fail": true, "approval": true, "steps": 3,
"delay": 0.5}}.

It also adopts the runs already under way in the workspace when it starts (the
seeded demo's pending, queued, running and paused runs, which no runtime was ever
told about): each carries on from its last step, so a fresh demo shows runs
moving, pausing and finishing instead of sitting until they time out. That one
read at start is its only look at the database besides configure().

Over 500 lines on purpose: one runtime (Api, Run, Runtime and its HTTP handler) whose
parts share the run-playing state; it is demo code, read as one story.
"""

import contextlib
import io
import json
import logging
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler

from django.db import transaction
from django.utils import timezone

from agents.models import AgentVersion, ApiKey, Workspace
from agents.services import api_key_create
from executions.control import dispatch

from .samples import sample

logger = logging.getLogger("runboard.demo_runtime")

KEY_NAME = "demo runtime"
APPROVAL_WAIT_SECONDS = 600
# Adopted runs were paused for a person long before this runtime started: they wait
# for the decision as long as the runtime lives.
ADOPTED_APPROVAL_WAIT_SECONDS = 7 * 24 * 3600
# Adopted runs start within this many seconds of each other, not all on one tick.
ADOPT_STAGGER_SECONDS = 30.0
ACTIVE = ("pending", "queued", "running", "awaiting_approval")
RETRIES = 6


class Stop(Exception):
    """The run is over from Runboard's side (cancelled, timed out, rejected)."""


class Api:
    """Just enough of an HTTP client for Runboard's JSON API."""

    def __init__(self, base: str, key: str):
        self.base = base.rstrip("/") + "/api/v1"
        self.key = key

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None, ctype=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": ctype or "application/json",
            },
        )
        # Every report is safe to repeat (steps are keyed by sequence), so a dropped
        # connection (a restarting server) is simply tried again.
        for attempt in range(RETRIES):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                detail = exc.read(500).decode(errors="replace")
                if exc.code in (404, 409):
                    raise Stop(f"{method} {path}: {exc.code} {detail}") from None
                if exc.code < 500 or attempt == RETRIES - 1:
                    raise RuntimeError(f"{method} {path}: HTTP {exc.code} {detail}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt == RETRIES - 1:
                    raise
            time.sleep(2**attempt)
        raise RuntimeError("unreachable")

    def upload(self, execution_id: str, name: str, content: bytes, fields: dict):
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in fields.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            )
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        )
        body = (
            "".join(parts).encode() + head.encode() + content + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.call(
            "POST",
            f"/executions/{execution_id}/artifacts",
            raw=body,
            ctype=f"multipart/form-data; boundary={boundary}",
        )


def screenshot(title: str, lines: list[str]) -> bytes:
    """A browser-window picture for the step's screenshot artifact."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (960, 600), "#f6f7f9")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 960, 44], fill="#1f2937")
    for i, colour in enumerate(["#ef4444", "#f59e0b", "#22c55e"]):
        draw.ellipse([16 + i * 22, 15, 30 + i * 22, 29], fill=colour)
    draw.rounded_rectangle([100, 10, 860, 34], radius=8, fill="#374151")
    draw.text((116, 16), f"https://portal.example.com/{title.lower().replace(' ', '-')}", "#e5e7eb")
    draw.rectangle([40, 80, 920, 560], fill="#ffffff", outline="#d1d5db")
    draw.text((64, 100), title, "#111827")
    for n, line in enumerate(lines[:12]):
        draw.text((64, 140 + n * 30), line[:110], "#374151")
    draw.rectangle([64, 500, 240, 536], fill="#4f46e5")
    draw.text((100, 511), "Submit", "#ffffff")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Run:
    """One execution being worked on."""

    def __init__(
        self,
        runtime: "Runtime",
        payload: dict,
        api: Api,
        *,
        adopted: dict | None = None,
        start_after: float = 0.0,
    ):
        self.runtime = runtime
        # {"status": ..., "steps": [{"sequence", "kind", "name", "status", "input"}]}
        # for a run that was under way before this runtime started.
        self.adopted = adopted
        self.start_after = start_after
        self.api = api
        self.execution = payload["execution"]
        self.id = self.execution["id"]
        self.input = self.execution.get("input") or {}
        steer = self.input.get("demo") if isinstance(self.input.get("demo"), dict) else {}
        self.random = random.Random(self.id)
        self.delay = float(steer.get("delay", runtime.step_delay))
        self.fail = steer.get("fail", self.random.random() < 0.15)
        self.ask_approval = steer.get("approval", self.random.random() < 0.3)
        self.extra_steps = int(steer.get("steps", self.random.randint(1, 3)))
        self.model = (self.execution.get("config") or {}).get("model") or "gpt-4o-mini"
        self.cancelled = threading.Event()
        self.decided = threading.Event()
        self.decision: str | None = None
        self.approval: dict = {}
        self.sequence = 0

    # -- reporting -----------------------------------------------------------------

    def wait(self, seconds: float | None = None):
        if self.cancelled.wait(self.delay if seconds is None else seconds):
            raise Stop("cancelled by Runboard")

    def status(self, status: str, **fields):
        self.api.call("PATCH", f"/executions/{self.id}", {"status": status, **fields})

    def step(self, kind: str, name: str, **fields) -> int:
        self.sequence += 1
        step = {"sequence": self.sequence, "kind": kind, "name": name, **fields}
        self.api.call("POST", f"/executions/{self.id}/steps", {"steps": [step]})
        return self.sequence

    # -- the script ----------------------------------------------------------------

    def play(self):
        if self.start_after:
            self.wait(self.start_after)
        if self.adopted and self.adopted["status"] in {"running", "awaiting_approval"}:
            return self.resume()
        agent = self.execution.get("agent", "agent")
        keys = ", ".join(k for k in self.input if k != "demo") or "nothing"
        self.wait()  # a moment to pick the job up, as a real runtime's queue would take
        self.status("running")
        self.step(
            "thought",
            "Plan",
            output={"text": f"I was given {keys}. I will read it, look things up, then answer."},
        )
        self.wait()
        prompt = self.random.randint(600, 2400)
        self.step(
            "model_call",
            f"chat {self.model}",
            model=self.model,
            input={"messages": [{"role": "user", "content": json.dumps(self.input)[:500]}]},
            output={"role": "assistant", "content": "I need to open the portal first."},
            prompt_tokens=prompt,
            completion_tokens=self.random.randint(40, 300),
            duration_ms=self.random.randint(400, 2500),
        )
        self.wait()
        sequence = self.step(
            "action",
            "open portal",
            input={"url": "https://portal.example.com"},
            output={"title": f"{agent} portal"},
        )
        lines = [f"{k}: {v}" for k, v in self.input.items() if k != "demo"]
        self.api.upload(
            self.id,
            "screenshot.png",
            screenshot(f"{agent} portal", lines or ["(no input)"]),
            {
                "kind": "screenshot",
                "step_sequence": sequence,
                "bounding_boxes": json.dumps(
                    [{"label": "submit", "x": 0.066, "y": 0.83, "width": 0.185, "height": 0.06}]
                ),
            },
        )
        self.wait()
        for n in range(self.extra_steps):
            self.step(
                "tool_call",
                self.random.choice(["lookup_record", "fetch_document", "search_index"]),
                input={"query": keys, "page": n + 1},
                output={"hits": self.random.randint(0, 9)},
                duration_ms=self.random.randint(50, 900),
            )
            self.wait()
        if self.fail:
            self.step(
                "tool_call",
                "submit_form",
                status="failed",
                input={"form": "final"},
                error="Upstream API answered 502 Bad Gateway",
            )
            self.status(
                "failed",
                error="submit_form: Upstream API answered 502 Bad Gateway",
                failure_reason="The portal's API was down when the form was submitted.",
            )
            return
        if self.ask_approval:
            self.checkpoint()
        self.finish()

    def finish(self):
        agent = self.execution.get("agent", "agent")
        keys = ", ".join(k for k in self.input if k != "demo") or "nothing"
        self.step(
            "model_call",
            f"summarise {self.model}",
            model=self.model,
            prompt_tokens=self.random.randint(300, 900),
            completion_tokens=self.random.randint(60, 200),
            output={"content": "All done."},
        )
        # Output that fits the agent's output schema, as a real agent's would.
        schema = self.runtime.output_schemas.get((agent, self.execution.get("version", "")), None)
        if schema:
            output = sample(schema, self.random, "output")
        else:
            output = {"result": "ok", "checked": keys, "score": round(self.random.random(), 2)}
        self.status("completed", output=output, summary=f"{agent} finished: {keys} processed.")

    def resume(self):
        """Carry on a run that was under way before this runtime started: end the step
        it was in, then do a little more work and finish (or, paused at a checkpoint,
        wait for the reviewer first)."""
        steps = self.adopted["steps"]
        self.sequence = max((s["sequence"] for s in steps), default=0)
        open_steps = [s for s in steps if s["status"] == "running"]
        if self.adopted["status"] == "awaiting_approval":
            checkpoint = next((s for s in open_steps if s["kind"] == "approval"), None)
            ask = (checkpoint or {}).get("input") or {}
            if checkpoint is None:
                checkpoint = {"sequence": self.step("approval", "approval", status="running")}
            self.await_decision(
                checkpoint["sequence"],
                checkpoint.get("name") or "approval",
                ask,
                wait_seconds=ADOPTED_APPROVAL_WAIT_SECONDS,
            )
            self.finish()
            return
        self.wait()
        for step in open_steps:
            # The same sequence: the step it was in ends, rather than a new one starting.
            self.api.call(
                "POST",
                f"/executions/{self.id}/steps",
                {
                    "steps": [
                        {
                            "sequence": step["sequence"],
                            "kind": step["kind"],
                            "name": step["name"],
                            "status": "completed",
                            "output": {"ok": True},
                        }
                    ]
                },
            )
            self.wait()
        for n in range(self.extra_steps):
            self.step(
                "tool_call",
                self.random.choice(["lookup_record", "fetch_document", "search_index"]),
                input={"page": n + 1},
                output={"hits": self.random.randint(0, 9)},
                duration_ms=self.random.randint(50, 900),
            )
            self.wait()
        if self.fail:
            self.status(
                "failed",
                error="fetch_document: Upstream API answered 502 Bad Gateway",
                failure_reason="The portal's API was down when the document was fetched.",
            )
            return
        self.finish()

    def checkpoint(self):
        amount = round(self.random.uniform(50, 500), 2)
        ask = {
            "action": "submit_form",
            "amount": amount,
            "currency": "EUR",
            "reason": "Submissions over 100 EUR need a person's approval.",
        }
        sequence = self.step("approval", "approve submission", status="running", input=ask)
        self.api.call("POST", f"/executions/{self.id}/approval-request", {"request": ask})
        self.await_decision(sequence, "approve submission", ask)
        self.step("thought", "Approved", output={"text": "A reviewer approved; submitting."})

    def await_decision(
        self, sequence: int, name: str, ask: dict, *, wait_seconds: float = APPROVAL_WAIT_SECONDS
    ):
        """Wait at the checkpoint step `sequence` for the reviewer; Stop if rejected."""
        deadline = time.monotonic() + wait_seconds
        while not self.decided.is_set():
            if time.monotonic() > deadline:
                raise Stop("no decision in time")
            self.wait(0.5)
        if self.decision != "approved":
            raise Stop("rejected by a reviewer")
        # The same sequence again: the checkpoint step is updated, not duplicated.
        self.api.call(
            "POST",
            f"/executions/{self.id}/steps",
            {
                "steps": [
                    {
                        "sequence": sequence,
                        "kind": "approval",
                        "name": name,
                        "status": "completed",
                        "input": ask,
                        "output": self.approval,
                    }
                ]
            },
        )
        self.sequence = max(self.sequence, sequence)


class Runtime:
    def __init__(self, *, api_base: str, step_delay: float):
        self.api_base = api_base
        self.step_delay = step_delay
        self.runs: dict[str, Run] = {}
        self.lock = threading.Lock()
        # (agent name, version) -> (webhook secret, API key), filled by configure().
        self.versions: dict[tuple[str, str], tuple[str, str]] = {}
        # (agent name, version) -> its output JSON Schema, to answer with fitting output.
        self.output_schemas: dict[tuple[str, str], dict] = {}

    def configure(self, *, workspace: Workspace, hook_base: str) -> int:
        """Point the workspace's versions at this runtime and get an API key for it."""
        with transaction.atomic():
            # The key of an earlier start is not needed any more: one live key at a time.
            ApiKey.objects.filter(workspace=workspace, name=KEY_NAME).active().update(
                revoked_at=timezone.now()
            )
            _, raw = api_key_create(workspace=workspace, name=KEY_NAME)
            versions = AgentVersion.objects.filter(agent__workspace=workspace).select_related(
                "agent"
            )
            for version in versions:
                version.webhook_url = f"{hook_base}/hooks/{version.agent.slug}"
                if not version.webhook_secret:
                    version.webhook_secret = secrets.token_urlsafe(24)
                version.save(update_fields=["webhook_url", "webhook_secret"])
                self.versions[(version.agent.name, version.version)] = (
                    version.webhook_secret,
                    raw,
                )
                self.output_schemas[(version.agent.name, version.version)] = (
                    version.output_schema or {}
                )
        return len(self.versions)

    def adopt(self, *, workspace: Workspace, stagger: float = ADOPT_STAGGER_SECONDS) -> int:
        """Take over the workspace's runs already under way whose versions this runtime
        serves (configure() first), each on its own thread, starting within `stagger`
        seconds. A run it already has is left alone. Returns how many it adopted."""
        from executions.models import Execution

        active = (
            Execution.objects.filter(
                workspace=workspace, status__in=ACTIVE, agent_version__isnull=False
            )
            .select_related("agent_version__agent")
            .order_by("created_at")
        )
        adopted = []
        for execution in active:
            version = execution.agent_version
            key = (version.agent.name, version.version)
            if key not in self.versions or str(execution.pk) in self.runs:
                continue
            steps = list(
                execution.steps.order_by("sequence").values(
                    "sequence", "kind", "name", "status", "input"
                )
            )
            payload = {
                "event": "execute",
                "execution": {
                    "id": str(execution.pk),
                    "agent": key[0],
                    "version": key[1],
                    "input": execution.input,
                    "config": version.config,
                },
            }
            rng = random.Random(str(execution.pk))
            run = Run(
                self,
                payload,
                Api(self.api_base, self.versions[key][1]),
                adopted={"status": execution.status, "steps": steps},
                start_after=rng.uniform(0, stagger),
            )
            with self.lock:
                self.runs[run.id] = run
            adopted.append(run)
        for run in adopted:
            threading.Thread(target=self._play, args=(run,), daemon=True).start()
        return len(adopted)

    def receive(self, body: bytes, headers) -> tuple[int, dict]:
        try:
            payload = json.loads(body)
            execution = payload["execution"]
            key = (execution["agent"], execution["version"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "not a Runboard webhook"}
        if key not in self.versions:
            return 404, {"error": f"this runtime does not serve {key[0]}:{key[1]}"}
        secret, api_key = self.versions[key]
        if not dispatch.verify(body, secret, headers.get(dispatch.SIGNATURE_HEADER, "")):
            return 401, {"error": "bad signature"}
        event = payload.get("event")
        with self.lock:
            run = self.runs.get(execution["id"])
            if event == "execute":
                if run is not None:
                    return 200, {"duplicate": True}  # at-least-once: already have it
                run = self.runs[execution["id"]] = Run(self, payload, Api(self.api_base, api_key))
                threading.Thread(target=self._play, args=(run,), daemon=True).start()
                return 202, {"accepted": execution["id"]}
        if run is None:
            return 200, {"unknown": execution["id"]}
        if event == "cancel":
            run.cancelled.set()
        elif event in {"approved", "rejected"}:
            run.decision = event
            run.approval = payload.get("approval") or {}
            run.decided.set()
        return 200, {"ok": event}

    def _play(self, run: Run):
        try:
            run.play()
            logger.info("run %s finished", run.id)
        except Stop as exc:
            logger.info("run %s stopped: %s", run.id, exc)
        except Exception:
            logger.exception("run %s broke", run.id)
            # Best effort: the log above already has the cause.
            with contextlib.suppress(Exception):
                run.status("failed", error="The demo runtime crashed; see its log.")


def make_handler(runtime: Runtime):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, answer = runtime.receive(self.rfile.read(length), self.headers)
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            logger.debug("%s %s", self.address_string(), format % args)

    return Handler
