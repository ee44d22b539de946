"""openai + OpenLLMetry: traceloop-sdk's Traceloop.init pointed at Runboard (as its docs
say: TRACELOOP_BASE_URL and TRACELOOP_HEADERS), its @workflow and @tool decorators
around a hand-written agent loop, and its OpenAI instrumentation."""

import json
import os

from common import PROMPTS, TOOLS, args, get_weather
from stub import MODEL, start

case, url, key = args()
os.environ["TRACELOOP_TELEMETRY"] = "false"
if url == "console":
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    exporter = ConsoleSpanExporter()
else:
    os.environ["TRACELOOP_BASE_URL"] = url
    # W3C baggage format: the space percent-encoded.
    os.environ["TRACELOOP_HEADERS"] = f"Authorization=Bearer%20{key}"
    os.environ["TRACELOOP_METRICS_ENABLED"] = "false"
    exporter = None

import openai  # noqa: E402
from traceloop.sdk import Traceloop  # noqa: E402
from traceloop.sdk.decorators import tool, workflow  # noqa: E402

Traceloop.init(app_name="weather-openllmetry", disable_batch=True, exporter=exporter)
client = openai.OpenAI(base_url=start(), api_key="sk-stub", max_retries=0)


@tool(name="get_weather")
def weather(city: str) -> str:
    return get_weather(city)


@workflow(name="weather_workflow")
def run(question: str) -> str:
    messages = [{"role": "user", "content": question}]
    while True:
        reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


try:
    print(run(PROMPTS[case]))
except Exception as exc:
    print(f"failed: {exc!r}")
Traceloop.get_tracer_provider().shutdown() if hasattr(Traceloop, "get_tracer_provider") else None
