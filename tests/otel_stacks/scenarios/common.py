"""What every scenario shares: its arguments, the tracer provider exporting through the
OpenTelemetry SDK's own OTLP/HTTP exporter, and the weather tool.

    python <scenario>.py <case> <runboard base url> <api key>

case: ok (a tool-using run), model_error (the model answers 400), tool_error (the
tool raises). The base URL "console" prints the spans instead (to read what a
library sends).
"""

import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

PROMPTS = {
    "ok": "What is the weather in Paris?",
    "model_error": "What is the weather in Paris? FAIL_MODEL",
    "tool_error": "What is the weather in Atlantis?",
}


def args() -> tuple[str, str, str]:
    case, url, key = [*sys.argv[1:], "ok", "console", ""][:3]
    if case not in PROMPTS:
        sys.exit(f"case must be one of {', '.join(PROMPTS)}")
    return case, url, key


def provider(service: str, url: str, key: str) -> TracerProvider:
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if url == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"}
        )
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    return tracer_provider


def get_weather(city: str) -> str:
    """The weather now in a city."""
    if city == "Atlantis":
        raise RuntimeError(f"no weather station in {city}")
    return f"18 °C and sunny in {city}"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather now in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
