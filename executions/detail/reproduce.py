"""The API request that starts a new run like this one, as curl and as Python.

Always the control plane's execute call, which queues the run and hands it to the
agent version's runtime by webhook: `POST /api/v1/agents/{name}:{version}/execute`
with {"inputs": ..., "metadata": ..., "priority": ...}, or `POST /api/v1/execute`
with {"name": "agent"} for a run without a version. Not the reporting door
(`POST /api/v1/executions`), which records a run a runtime is already doing and
so would leave a replay pending forever. Whatever door the run came in by (an
OTLP trace, a schedule), its agent, input and metadata can be executed again.
The idempotency key is left out on purpose: replaying it would hand back the
old execution instead of starting a new one.

Nothing secret is ever printed: the API key is an environment variable
placeholder, stored request headers that look like credentials are redacted, and
so are input/metadata fields whose names say they hold a secret (the note in the
panel says so, since it changes what the replay sends).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from executions.models import Execution, Priority

EXECUTE_PATH = "/api/v1/execute"
API_KEY_ENV = "RUNBOARD_API_KEY"
REDACTED = "[redacted]"
# Past this size the curl command reads its body from a downloaded file instead.
INLINE_BODY_LIMIT = 64 * 1024

_SECRET_HEADER = re.compile(
    r"auth|cookie|token|secret|api[-_]?key|password|passwd|signature|session|credential|"
    r"private|x-amz-security",
    re.I,
)
_SECRET_FIELD = re.compile(
    r"^(password|passwd|secret|client_secret|api[-_]?key|apikey|access[-_]?token|"
    r"refresh[-_]?token|auth[-_]?token|token|authorization|private[-_]?key|secret[-_]?key)$",
    re.I,
)


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers for display: credentials replaced, everything else kept as sent."""
    if not isinstance(headers, dict):
        return {}
    shown = {}
    for name, value in headers.items():
        name = str(name)
        shown[name] = REDACTED if _SECRET_HEADER.search(name) else str(value)
    return shown


def redact_fields(value: Any) -> tuple[Any, int]:
    """A copy of a JSON value with secret-named fields replaced, and how many were."""
    if isinstance(value, dict):
        out, count = {}, 0
        for key, item in value.items():
            if _SECRET_FIELD.match(str(key)) and item not in (None, ""):
                out[key] = REDACTED
                count += 1
            else:
                out[key], n = redact_fields(item)
                count += n
        return out, count
    if isinstance(value, list):
        out_list, count = [], 0
        for item in value:
            redacted, n = redact_fields(item)
            out_list.append(redacted)
            count += n
        return out_list, count
    return value, 0


@dataclass
class ReproduceRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    redacted_fields: int = 0
    webhook_url: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def body_json(self) -> str:
        return json.dumps(self.body, indent=2, ensure_ascii=False)

    @property
    def body_size(self) -> int:
        return len(self.body_json.encode())

    @property
    def body_inline(self) -> bool:
        return self.body_size <= INLINE_BODY_LIMIT

    def curl(self, *, body_file: str = "") -> str:
        lines = [f"curl -X {self.method} {shlex.quote(self.url)}"]
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                # Double quotes so the shell expands the key from the environment.
                lines.append(f'-H "{name}: Bearer ${API_KEY_ENV}"')
            else:
                lines.append(f"-H {shlex.quote(f'{name}: {value}')}")
        if self.body_inline or not body_file:
            lines.append(f"--data-raw {shlex.quote(self.body_json)}")
        else:
            lines.append(f"--data @{shlex.quote(body_file)}")
        return " \\\n  ".join(lines)

    def python(self) -> str:
        headers = {
            name: value for name, value in self.headers.items() if name.lower() != "authorization"
        }
        header_lines = [f'        "Authorization": f"Bearer {{os.environ[\'{API_KEY_ENV}\']}}",']
        header_lines += [f"        {_py(name)}: {_py(value)}," for name, value in headers.items()]
        return "\n".join(
            [
                "import os",
                "",
                "import requests",
                "",
                "response = requests.post(",
                f"    {_py(self.url)},",
                "    headers={",
                *header_lines,
                "    },",
                f"    json={_py(self.body, 1)},",
                "    timeout=30,",
                ")",
                "response.raise_for_status()",
                'print(response.json()["execution_id"])',
            ]
        )


def _py(value: Any, depth: int = 0) -> str:
    """A JSON value as a Python literal, indented like json.dumps(indent=4)."""
    pad, inner = "    " * depth, "    " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_py(str(k))}: {_py(v, depth + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [f"{inner}{_py(v, depth + 1)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def reproduce_request(execution: Execution, *, base_url: str) -> ReproduceRequest:
    """The request that starts a new run like this one. base_url is the site's root."""
    inputs, n_input = redact_fields(execution.input if execution.input is not None else {})
    metadata, n_meta = redact_fields(execution.metadata or {})
    body: dict[str, Any] = {"inputs": inputs}
    if execution.version_name:
        ref = f"{quote(execution.agent_name, safe='')}:{quote(execution.version_name, safe='')}"
        path = f"/api/v1/agents/{ref}/execute"
    else:
        # No version to name in the path: the execute door takes the agent by name
        # (its newest version).
        path = EXECUTE_PATH
        body = {"name": execution.agent_name, **body}
    if metadata:
        body["metadata"] = metadata
    if execution.priority != Priority.NORMAL:
        body["priority"] = Priority(execution.priority).label
    webhook_url = ""
    if execution.agent_version_id and execution.agent_version:
        webhook_url = execution.agent_version.webhook_url
    notes = []
    if execution.agent_removed:
        notes.append(
            f"The agent “{execution.agent_name}” has been removed; this request will be "
            "refused until an agent of that name exists again."
        )
    return ReproduceRequest(
        method="POST",
        url=base_url.rstrip("/") + path,
        headers={"Authorization": REDACTED, "Content-Type": "application/json"},
        body=body,
        redacted_fields=n_input + n_meta,
        webhook_url=webhook_url,
        notes=notes,
    )
