"""LlamaIndex (a FunctionAgent workflow, its OpenAI LLM pointed at the local stub) with
OpenInference's LlamaIndex instrumentation."""

import asyncio

from common import PROMPTS, args, get_weather, provider
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-llama-index", url, key)
LlamaIndexInstrumentor().instrument(tracer_provider=tracer_provider)

# Streamed (FunctionAgent streams by default): usage comes only when asked for.
llm = OpenAI(
    model=MODEL,
    api_base=start(),
    api_key="sk-stub",
    max_retries=0,
    additional_kwargs={"stream_options": {"include_usage": True}},
)
agent = FunctionAgent(
    name="weather-agent",
    tools=[FunctionTool.from_defaults(fn=get_weather)],
    llm=llm,
    system_prompt="Answer with the weather tool.",
)


async def main() -> None:
    try:
        print(await agent.run(PROMPTS[case]))
    except Exception as exc:
        print(f"failed: {exc!r}")


asyncio.run(main())
tracer_provider.shutdown()
