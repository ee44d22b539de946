"""Strands Agents with its native OpenTelemetry tracing (it traces through the global
tracer provider), its OpenAI model provider pointed at the local stub."""

from common import PROMPTS, args, get_weather, provider
from strands import Agent, tool
from strands.models.openai import OpenAIModel
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-strands", url, key)


@tool
def weather(city: str) -> str:
    """The weather now in a city.

    Args:
        city: the city's name.
    """
    return get_weather(city)


model = OpenAIModel(
    client_args={"base_url": start(), "api_key": "sk-stub", "max_retries": 0},
    model_id=MODEL,
)
agent = Agent(
    name="weather-agent",
    model=model,
    tools=[weather],
    system_prompt="Answer with the weather tool.",
    callback_handler=None,
)

try:
    print(agent(PROMPTS[case]))
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
