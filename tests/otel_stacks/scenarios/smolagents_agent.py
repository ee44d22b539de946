"""smolagents (a ToolCallingAgent, its OpenAIModel pointed at the local stub) with
OpenInference's smolagents instrumentation. The agent sends tool results back as user
messages and ends by calling its final_answer tool: the stub plays along (stub.py)."""

from common import PROMPTS, args, get_weather, provider
from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from smolagents import OpenAIModel, ToolCallingAgent, tool
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-smolagents", url, key)
SmolagentsInstrumentor().instrument(tracer_provider=tracer_provider)


@tool
def weather(city: str) -> str:
    """The weather now in a city.

    Args:
        city: the city's name.
    """
    return get_weather(city)


model = OpenAIModel(
    model_id=MODEL, api_base=start(), api_key="sk-stub", client_kwargs={"max_retries": 0}
)
agent = ToolCallingAgent(tools=[weather], model=model, name="weather_agent", max_steps=3)

try:
    print(agent.run(PROMPTS[case]))
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
