"""openai + the official GenAI instrumentation (opentelemetry-instrumentation-openai-v2).

Message content travels as log records (the GenAI events), exported to /v1/logs with
the SDK's OTLP log exporter; the agent and tool spans are written by hand with the
GenAI conventions (invoke_agent, execute_tool), as a team using only this
instrumentation does.
"""

import json
import os

# Message content as events (log records) only: the form that needs /v1/logs.
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "EVENT_ONLY"

import openai
from common import PROMPTS, TOOLS, args, get_weather, provider
from opentelemetry import _logs
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.trace import Status, StatusCode
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-genai", url, key)
logger_provider = LoggerProvider(resource=tracer_provider.resource)
if url == "console":
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(ConsoleLogRecordExporter()))
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{url}/v1/logs", headers={"Authorization": f"Bearer {key}"})
        )
    )
_logs.set_logger_provider(logger_provider)
OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
tracer = tracer_provider.get_tracer(__name__)
client = openai.OpenAI(base_url=start(), api_key="sk-stub", max_retries=0)


def weather(call) -> str:
    arguments = call.function.arguments
    with tracer.start_as_current_span("execute_tool get_weather") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        span.set_attribute("gen_ai.tool.name", "get_weather")
        span.set_attribute("gen_ai.tool.call.id", call.id)
        span.set_attribute("gen_ai.tool.call.arguments", arguments)
        result = get_weather(**json.loads(arguments))
        span.set_attribute("gen_ai.tool.call.result", result)
        return result


def run(question: str) -> str:
    with tracer.start_as_current_span("invoke_agent weather-agent") as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("gen_ai.agent.name", "weather-agent")
        messages = [{"role": "user", "content": question}]
        try:
            while True:
                reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
                message = reply.choices[0].message
                if not message.tool_calls:
                    return message.content
                messages.append(message.model_dump(exclude_none=True))
                for call in message.tool_calls:
                    messages.append(
                        {"role": "tool", "tool_call_id": call.id, "content": weather(call)}
                    )
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.set_attribute("error.type", type(exc).__qualname__)
            raise


try:
    print(run(PROMPTS[case]))
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
logger_provider.shutdown()
