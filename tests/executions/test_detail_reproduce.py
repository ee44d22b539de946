"""The request that reproduces a run: curl and Python that really say the same thing."""

import ast
import json
import shlex
from types import SimpleNamespace

from executions.detail.reproduce import INLINE_BODY_LIMIT, redact_headers, reproduce_request
from executions.models import Priority
from tests.factories import ExecutionFactory

BASE = "https://runboard.example/"


def parse_curl(command: str) -> dict:
    """What curl would send, read back from the command line as a shell would split it."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl"
    parsed = {"headers": {}, "data": None, "file": None}
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-X":
            parsed["method"] = words[i + 1]
            i += 2
        elif word == "-H":
            name, value = words[i + 1].split(": ", 1)
            parsed["headers"][name] = value
            i += 2
        elif word == "--data-raw":
            parsed["data"] = json.loads(words[i + 1])
            i += 2
        elif word == "--data":
            parsed["file"] = words[i + 1]
            i += 2
        else:
            parsed["url"] = word
            i += 1
    return parsed


def python_call(code: str) -> dict:
    """The arguments of requests.post(...) in the generated Python, evaluated safely."""
    tree = ast.parse(code)
    call = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "post"
    )
    args = {"url": ast.literal_eval(call.args[0])}
    for keyword in call.keywords:
        if keyword.arg == "json":
            args["json"] = ast.literal_eval(keyword.value)
        elif keyword.arg == "headers":
            # Evaluated with a stand-in environment: the key is read from it at run time.
            env = SimpleNamespace(environ={"RUNBOARD_API_KEY": "rb_from_env"})
            args["headers"] = eval(
                compile(ast.Expression(keyword.value), "<headers>", "eval"), {"os": env}
            )
    return args


def test_curl_and_python_send_the_execute_request(db):
    execution = ExecutionFactory(
        agent_name="invoice-extractor",
        version_name="v2",
        input={
            "file": "https://example.com/it's.pdf",
            "pages": [1, 2],
            "strict": True,
            "note": None,
        },
        metadata={"customer": "acme", "run": 3},
        idempotency_key="abc-123",
    )
    request = reproduce_request(execution, base_url=BASE)
    expected = {
        "inputs": {
            "file": "https://example.com/it's.pdf",
            "pages": [1, 2],
            "strict": True,
            "note": None,
        },
        "metadata": {"customer": "acme", "run": 3},
    }
    curl = parse_curl(request.curl())
    assert curl["method"] == "POST"
    # The execute door (which hands the run to its runtime), not the reporting one.
    assert curl["url"] == "https://runboard.example/api/v1/agents/invoice-extractor:v2/execute"
    assert curl["headers"]["Content-Type"] == "application/json"
    # The key comes from the environment: the shell expands it, the page never holds it.
    assert curl["headers"]["Authorization"] == "Bearer $RUNBOARD_API_KEY"
    assert '-H "Authorization: Bearer $RUNBOARD_API_KEY"' in request.curl()
    assert curl["data"] == expected
    # Replaying the idempotency key would return the old run instead of starting a new one.
    assert "abc-123" not in request.curl()

    code = request.python()
    call = python_call(code)
    assert call["url"] == "https://runboard.example/api/v1/agents/invoice-extractor:v2/execute"
    assert call["json"] == expected
    assert call["headers"] == {
        "Authorization": "Bearer rb_from_env",
        "Content-Type": "application/json",
    }
    compile(code, "reproduce.py", "exec")


def test_a_run_without_a_version_executes_the_agent_by_name(db):
    execution = ExecutionFactory(agent_name="adhoc agent", version_name="", input={"q": 1})
    request = reproduce_request(execution, base_url=BASE)
    assert request.url == "https://runboard.example/api/v1/execute"
    assert request.body == {"name": "adhoc agent", "inputs": {"q": 1}}


def test_the_version_in_the_path_is_url_encoded(db):
    execution = ExecutionFactory(agent_name="a/b c", version_name="v1?x")
    request = reproduce_request(execution, base_url=BASE)
    assert request.url == "https://runboard.example/api/v1/agents/a%2Fb%20c:v1%3Fx/execute"


def test_priority_appears_only_when_not_normal(db):
    normal = reproduce_request(ExecutionFactory(), base_url=BASE)
    assert "priority" not in normal.body
    high = reproduce_request(ExecutionFactory(priority=Priority.HIGH), base_url=BASE)
    assert high.body["priority"] == "high"


def test_secret_looking_fields_are_redacted_and_counted(db):
    execution = ExecutionFactory(
        input={
            "url": "https://x",
            "password": "hunter2",
            "nested": {"api_key": "sk-1", "keys": [1]},
        },
        metadata={"token": "t0k", "team": "ops"},
    )
    request = reproduce_request(execution, base_url=BASE)
    text = request.curl() + request.python()
    for secret in ("hunter2", "sk-1", "t0k"):
        assert secret not in text
    assert request.redacted_fields == 3
    assert request.body["inputs"]["nested"]["keys"] == [1]
    assert request.body["metadata"]["team"] == "ops"


def test_stored_headers_are_redacted_for_display():
    shown = redact_headers(
        {
            "Authorization": "Bearer rb_live",
            "Cookie": "sessionid=1",
            "X-Api-Key": "k",
            "X-Hub-Signature-256": "sha256=...",
            "Content-Type": "application/json",
            "User-Agent": "agent/1.0",
        }
    )
    assert shown == {
        "Authorization": "[redacted]",
        "Cookie": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Hub-Signature-256": "[redacted]",
        "Content-Type": "application/json",
        "User-Agent": "agent/1.0",
    }
    assert redact_headers(None) == {} and redact_headers(["x"]) == {}


def test_a_big_body_is_read_from_a_file(db):
    execution = ExecutionFactory(input={"text": "x" * (INLINE_BODY_LIMIT + 10)})
    request = reproduce_request(execution, base_url=BASE)
    assert not request.body_inline
    curl = parse_curl(request.curl(body_file="execution-1-request.json"))
    assert curl["file"] == "@execution-1-request.json" and curl["data"] is None


def test_the_body_download_matches_the_request(alice_client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, input={"a": 1})
    response = alice_client.get(f"/executions/{execution.pk}/request.json")
    assert response.json() == {"inputs": {"a": 1}}
    assert "attachment" in response["Content-Disposition"]


def test_a_removed_agent_is_noted(db):
    execution = ExecutionFactory(
        agent_version=None, agent=None, agent_name="gone", version_name="v1"
    )
    request = reproduce_request(execution, base_url=BASE)
    assert request.url.endswith("/api/v1/agents/gone:v1/execute")
    assert any("removed" in note for note in request.notes)
