"""pydantic-ai with its native OpenTelemetry instrumentation (Agent.instrument_all),
its OpenAI model pointed at the local stub."""

from common import PROMPTS, args, get_weather, provider
from pydantic_ai import Agent
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-pydantic-ai", url, key)
Agent.instrument_all(InstrumentationSettings(tracer_provider=tracer_provider))
model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=start(), api_key="sk-stub"))
agent = Agent(model, name="weather-agent", instructions="Answer with the weather tool.")


@agent.tool_plain
def weather(city: str) -> str:
    """The weather now in a city."""
    return get_weather(city)


try:
    print(agent.run_sync(PROMPTS[case]).output)
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
