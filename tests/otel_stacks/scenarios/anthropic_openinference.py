"""The Anthropic SDK + OpenInference (openinference-instrumentation-anthropic): a
hand-written tool loop over the Messages API, agent and tool spans from
OpenInference's own tracer decorators."""

import anthropic
from common import PROMPTS, args, get_weather, provider
from openinference.instrumentation import OITracer, TraceConfig
from openinference.instrumentation.anthropic import AnthropicInstrumentor
from stub import ANTHROPIC_MODEL, start

case, url, key = args()
tracer_provider = provider("weather-anthropic", url, key)
AnthropicInstrumentor().instrument(tracer_provider=tracer_provider)
tracer = OITracer(tracer_provider.get_tracer(__name__), config=TraceConfig())
client = anthropic.Anthropic(base_url=start(prefix=""), api_key="sk-ant-stub", max_retries=0)
TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather now in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


@tracer.tool(name="get_weather")
def weather(city: str) -> str:
    return get_weather(city)


@tracer.agent(name="weather-agent")
def run(question: str) -> str:
    messages = [{"role": "user", "content": question}]
    while True:
        reply = client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=256, messages=messages, tools=TOOLS
        )
        calls = [block for block in reply.content if block.type == "tool_use"]
        if not calls:
            return "".join(block.text for block in reply.content if block.type == "text")
        messages.append({"role": "assistant", "content": [c.model_dump() for c in calls]})
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": c.id, "content": weather(**c.input)}
                    for c in calls
                ],
            }
        )


try:
    print(run(PROMPTS[case]))
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
