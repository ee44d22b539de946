"""A local OpenAI-compatible chat completions server for the scenarios (stdlib only:
it runs inside each stack's venv). It plays a weather agent's model:

- first call: asks for the agent's first tool ({"city": ...}) with the city the user named;
- after the tool's result: answers "It is 18 °C in <city>." (a non-ASCII reply, so
  escaped unicode would show);
- a user message holding "FAIL_MODEL": answers HTTP 400, which clients do not retry.

Token usage is fixed per call (70 -> 12, then 83 -> 18): with gpt-4o-mini's price
($0.15 / $0.60 per million) a run costs exactly $0.00004095.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "gpt-4o-mini-2024-07-18"
USAGE = [(70, 12), (83, 18)]


def _city(messages) -> str:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message.get("role") == "user" and isinstance(content, str):
            found = re.search(r"in ([A-Z][a-z]+)", content)
            if found:
                return found.group(1)
    return "Paris"


def _text(messages) -> str:
    return json.dumps(messages)


def completion(body: dict) -> tuple[int, dict]:
    messages = body.get("messages", [])
    if "FAIL_MODEL" in _text(messages):
        return 400, {
            "error": {
                "message": "The model refused: FAIL_MODEL in the prompt",
                "type": "invalid_request_error",
                "param": None,
                "code": "refused",
            }
        }
    answered = any(m.get("role") == "tool" for m in messages)
    city = _city(messages)
    prompt, completion_tokens = USAGE[1 if answered else 0]
    if answered or not body.get("tools"):
        message = {"role": "assistant", "content": f"It is 18 °C in {city}.", "refusal": None}
        finish = "stop"
    else:
        # The agent's own name for its weather tool (get_weather, weather...).
        tool = body["tools"][0]["function"]["name"]
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": "call_weather_1",
                    "type": "function",
                    "function": {"name": tool, "arguments": json.dumps({"city": city})},
                }
            ],
        }
        finish = "tool_calls"
    return 200, {
        "id": "chatcmpl-stub" + ("2" if answered else "1"),
        "object": "chat.completion",
        "created": 1767225600,
        "model": MODEL,
        "system_fingerprint": "fp_stub",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"


def anthropic_message(body: dict) -> tuple[int, dict]:
    """The same weather agent's model, as Anthropic's Messages API answers."""
    messages = body.get("messages", [])
    if "FAIL_MODEL" in _text(messages):
        return 400, {
            "type": "error",
            "error": {"type": "invalid_request_error",
                      "message": "The model refused: FAIL_MODEL in the prompt"},
        }  # fmt: skip
    answered = any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "tool_result" for p in m["content"])
        for m in messages
    )
    city = _city(messages)
    prompt, completion_tokens = USAGE[1 if answered else 0]
    if answered or not body.get("tools"):
        content = [{"type": "text", "text": f"It is 18 °C in {city}."}]
        stop = "end_turn"
    else:
        tool = body["tools"][0]["name"]
        content = [{"type": "tool_use", "id": "toolu_weather_1", "name": tool,
                    "input": {"city": city}}]  # fmt: skip
        stop = "tool_use"
    return 200, {
        "id": "msg_stub" + ("2" if answered else "1"),
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": completion_tokens},
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/").endswith("/chat/completions"):
            status, answer = completion(body)
        elif self.path.split("?")[0].rstrip("/").endswith("/messages"):
            status, answer = anthropic_message(body)
        else:
            status, answer = 404, {"error": {"message": f"no route {self.path}"}}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start(prefix: str = "/v1") -> str:
    """Serve on a free port in a daemon thread; the base URL for an OpenAI client
    (Anthropic's client adds /v1 itself: start(prefix=""))."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}{prefix}"
