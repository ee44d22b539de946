"""A local OpenAI-compatible chat completions server for the scenarios (stdlib only:
it runs inside each stack's venv). It plays a weather agent's model:

- first call: asks for the agent's first tool ({"city": ...}) with the city the user named;
- after the tool's result: answers "It is 18 °C in <city>." (a non-ASCII reply, so
  escaped unicode would show);
- a user message holding "FAIL_MODEL": answers HTTP 400, which clients do not retry;
- after a tool's error (a library that gives it back to the model): says it could not;
- an agent that ends by calling a final_answer tool (smolagents) gets that call with
  the reply as its answer;
- stream=true: the same reply as server-sent chunks, usage in the last one when
  stream_options.include_usage asks (the OpenAI API's own form).

A tool's result counts whether it comes as a "tool" message or, as smolagents sends it
by default, as a user message ("Observation:" or "Error:").

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
        content = _content_text(message.get("content"))
        if message.get("role") == "user":
            found = re.search(r"in ([A-Z][a-z]+)", content)
            if found:
                return found.group(1)
    return "Paris"


def _text(messages) -> str:
    return json.dumps(messages)


CALL_ID = "call_weather_1"
TOOL_FAILED = "no weather station"


SMOLAGENTS_RESULT = re.compile(r"(^|\n)(Observation|Error):\n")


def _content_text(content) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _tool_results(messages) -> list[str]:
    """The tool results the agent sent back, as text: "tool" messages, or smolagents'
    user messages ("Observation:\n<result>"; an error as "Error:\n<error>", which it
    may merge into the task's message)."""
    found = []
    for message in messages:
        text = _content_text(message.get("content"))
        role = message.get("role")
        if role == "tool" or (role == "user" and SMOLAGENTS_RESULT.search(text)):
            found.append(text)
    return found


def _reply(messages, city: str) -> str:
    if any(TOOL_FAILED in result for result in _tool_results(messages)):
        return f"Sorry, I could not get the weather in {city}."
    return f"It is 18 °C in {city}."


def _tool_call(name: str, arguments: dict) -> dict:
    return {
        "id": CALL_ID if name != "final_answer" else "call_final_1",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


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
    answered = bool(_tool_results(messages))
    city = _city(messages)
    prompt, completion_tokens = USAGE[1 if answered else 0]
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    if answered and "final_answer" in tools:
        call = _tool_call("final_answer", {"answer": _reply(messages, city)})
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        finish = "tool_calls"
    elif answered or not tools:
        message = {"role": "assistant", "content": _reply(messages, city), "refusal": None}
        finish = "stop"
    else:
        # The agent's own name for its weather tool (get_weather, weather...).
        call = _tool_call(tools[0], {"city": city})
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
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


def chunks(answer: dict, include_usage: bool) -> list[dict]:
    """A chat completion as the streamed chunks the OpenAI API sends for it: the role,
    the content or each tool call's name then arguments, the finish reason, the usage."""
    (choice,) = answer["choices"]
    message = choice["message"]
    head = {k: answer[k] for k in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict, finish=None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**head, "choices": [choice]}

    out = [chunk({"role": "assistant", "content": "" if message["content"] else None})]
    if message["content"]:
        text = message["content"]
        out += [chunk({"content": text[i : i + 8]}) for i in range(0, len(text), 8)]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        named = {"name": function["name"], "arguments": ""}
        first = {"index": index, "id": call["id"], "type": "function", "function": named}
        out.append(chunk({"tool_calls": [first]}))
        arguments = function["arguments"]
        for i in range(0, len(arguments), 10):
            part = {"index": index, "function": {"arguments": arguments[i : i + 10]}}
            out.append(chunk({"tool_calls": [part]}))
    out.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        out.append({**head, "choices": [], "usage": answer["usage"]})
    return out


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/").endswith("/chat/completions"):
            status, answer = completion(body)
            if status == 200 and body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return self.stream(chunks(answer, usage))
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

    def stream(self, events: list[dict]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def start(prefix: str = "/v1") -> str:
    """Serve on a free port in a daemon thread; the base URL for an OpenAI client
    (Anthropic's client adds /v1 itself: start(prefix=""))."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}{prefix}"


if __name__ == "__main__":
    # For a scenario in another language: print the base URL, serve until killed.
    import sys

    print(start(*sys.argv[1:2]), flush=True)
    threading.Event().wait()
