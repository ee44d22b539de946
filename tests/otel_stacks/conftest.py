"""Run a real instrumentation stack's scenario against a live test server.

Each stack lives in its own cached venv (stacks.py, built by build.py). A test whose
stack is not built here is skipped with the reason; in CI (CI=true) it is an error,
since .ci/run builds them all first.
"""

import http.client
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.factories import ApiKeyFactory

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks
from stacks import command, is_built, venv_dir

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@pytest.fixture
def key(workspace):
    return ApiKeyFactory.create_with_raw(workspace=workspace)[1]


class Dechunk(BaseHTTPRequestHandler):
    """Forwards a request to the live server with its chunked body as one body of known
    length. OpenTelemetry JS's exporter always sends Transfer-Encoding: chunked, which
    uvicorn, gunicorn and nginx read but Django's test server (wsgiref) does not."""

    protocol_version = "HTTP/1.1"
    target = ""

    def do_POST(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        headers["Content-Length"] = str(len(body))
        target = urlsplit(self.target)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def dechunked(live_server):
    """The live server's URL behind a Dechunk proxy, for the node stacks."""
    handler = type("Handler", (Dechunk,), {"target": live_server.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def run_stack(live_server, dechunked, key):
    """run_stack(stack, script, case) runs one scenario and returns what it printed."""

    def run(stack: str, script: str, case: str) -> str:
        if not is_built(stack):
            message = (
                f"the {stack} stack is not built ({venv_dir(stack)}): "
                "python tests/otel_stacks/build.py"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        url = dechunked if stack in stacks.NODE_STACKS else live_server.url
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
        env["PYTHONPATH"] = str(SCENARIOS)
        # A node scenario starts scenarios/stub.py with this interpreter (stdlib only).
        env["STUB_PYTHON"] = sys.executable
        env.update(stacks.env(stack))
        done = subprocess.run(
            [*command(stack), str(SCENARIOS / script), case, url, key],
            cwd=SCENARIOS,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return done.stdout

    return run
