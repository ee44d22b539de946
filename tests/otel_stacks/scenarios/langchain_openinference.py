"""LangChain (a tool-calling agent from langchain.agents) with OpenInference's LangChain
instrumentation, its ChatOpenAI pointed at the local stub."""

from common import PROMPTS, args, get_weather, provider
from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openinference.instrumentation.langchain import LangChainInstrumentor
from stub import MODEL, start

case, url, key = args()
tracer_provider = provider("weather-langchain", url, key)
LangChainInstrumentor().instrument(tracer_provider=tracer_provider)


@tool
def weather(city: str) -> str:
    """The weather now in a city."""
    return get_weather(city)


llm = ChatOpenAI(model=MODEL, base_url=start(), api_key="sk-stub", max_retries=0)
agent = create_agent(llm, tools=[weather], name="weather-agent")

try:
    result = agent.invoke({"messages": [{"role": "user", "content": PROMPTS[case]}]})
    print(result["messages"][-1].content)
except Exception as exc:
    print(f"failed: {exc!r}")
tracer_provider.shutdown()
