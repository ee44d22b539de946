"""openai + OpenInference (openinference-instrumentation-openai): a hand-written agent
loop, its agent and tool spans made with OpenInference's own tracer decorators."""

import json

import openai
from common import PROMPTS, TOOLS, args, get_weather, provider
from openinference.instrumentation import OITracer, TraceConfig
from openinference.instrumentation.openai import OpenAIInstrumentor
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-openinference", url, key)
OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
tracer = OITracer(tracer_provider.get_tracer(__name__), config=TraceConfig())
client = openai.OpenAI(base_url=start(), api_key="sk-stub", max_retries=0)


@tracer.tool
def weather(city: str) -> str:
    return get_weather(city)


@tracer.agent(name="weather-agent")
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
except Exception as exc:  # the failing cases end here, after their spans were sent
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
