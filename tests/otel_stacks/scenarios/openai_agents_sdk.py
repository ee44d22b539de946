"""The OpenAI Agents SDK + OpenInference (openinference-instrumentation-openai-agents),
its model on Chat Completions against the local stub."""

from common import PROMPTS, args, get_weather, provider
from openai import AsyncOpenAI
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from stub import MODEL, start

from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_trace_processors,
)

case, url, key = args()
tracer_provider = provider("weather-openai-agents", url, key)
# The SDK's own exporter sends to OpenAI's servers: offline here, so only OpenInference's.
set_trace_processors([])
OpenAIAgentsInstrumentor().instrument(tracer_provider=tracer_provider)
client = AsyncOpenAI(base_url=start(), api_key="sk-stub", max_retries=0)

agent = Agent(
    name="weather-agent",
    instructions="Answer with the weather tool.",
    model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
    # No failure function: the tool's exception ends the run instead of going to the model.
    tools=[function_tool(get_weather, failure_error_function=None)],
)

try:
    print(Runner.run_sync(agent, PROMPTS[case]).final_output)
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
