"""A model call's conversation in Debian's chromium: the card expands to the reply and
the prompt, the raw JSON opens from its toggle, a traceback from its own; and with
JavaScript off the step's page shows the same, its toggles native <details>."""

import pytest

from executions.models import Status, StepKind, StepStatus
from tests.browser.conftest import assert_no_unexpected_errors, login_cookie, watch
from tests.factories import ExecutionFactory, StepFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "What is the weather in Paris? <script>window.__pwned = 1</script>"
ANSWER = "It is **18 °C** in Paris."
TRACEBACK = "Traceback (most recent call last):\n  ...\nRuntimeError: no weather station"


def chat_run(agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.FAILED)
    StepFactory(
        execution=execution,
        sequence=1,
        kind=StepKind.MODEL_CALL,
        name="chat",
        model="gpt-4o-mini",
        input={
            "messages": [
                {"role": "user", "content": QUESTION},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18 °C and sunny"},
            ]
        },
        output={"choices": [{"message": {"role": "assistant", "content": ANSWER}}]},
    )
    StepFactory(
        execution=execution,
        sequence=2,
        kind=StepKind.TOOL_CALL,
        name="get_weather",
        status=StepStatus.FAILED,
        error="RuntimeError: no weather station",
        input={"city": "Atlantis"},
        attributes={"exception.stacktrace": TRACEBACK},
    )
    return execution


def test_a_model_call_card_reads_as_a_conversation(page, agent_version):
    execution = chat_run(agent_version)
    page.goto(execution.get_absolute_url())
    card = page.locator("#step-1")
    assert card.locator(".step-io").first.inner_text().replace("\n", " ") == f"REPLY {ANSWER}"
    card.locator(".step-more > summary").click()
    reply = card.locator(".convo-reply .msg")
    reply.wait_for()
    assert reply.locator("strong").inner_text() == "18 °C"
    prompt = card.locator(".convo-prompt .msg")
    assert prompt.count() == 3
    assert QUESTION in prompt.nth(0).inner_text()  # the script is text on the page
    assert page.evaluate("window.__pwned") is None
    assert prompt.nth(1).locator(".call-name").inner_text() == "get_weather"
    assert prompt.nth(1).locator(".call-args dd").inner_text() == "Paris"
    assert prompt.nth(2).locator(".msg-role").inner_text().lower() == "tool result"

    raw = card.locator("details.raw-json")
    assert not raw.locator(".json-view").first.is_visible()
    raw.locator("> summary").click()
    assert raw.locator(".json-view").first.is_visible()
    assert "call_1" in raw.locator(".json-view").first.inner_text()

    failed = page.locator("#step-2")
    failed.locator(".step-more > summary").click()
    toggle = failed.locator("details.step-traceback")
    toggle.wait_for()
    assert not toggle.locator("pre").is_visible()
    toggle.locator("summary").click()
    assert toggle.locator("pre").inner_text() == TRACEBACK
    assert failed.locator(".step-error-full").inner_text() == "RuntimeError: no weather station"
    page.screenshot(path="/tmp/runboard-conversation-card.png", full_page=True)


def test_the_conversation_with_javascript_off(browser, live_server, agent_version, alice):
    execution = chat_run(agent_version)
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, timezone_id="Asia/Tokyo"
    )
    context.add_cookies([{**login_cookie(alice), "url": live_server.url}])
    page = context.new_page()
    watch(page)
    page.goto(execution.get_absolute_url())
    # Without script the card's toggle holds a link to the step's own page.
    page.locator("#step-1 .step-more > summary").click()
    page.locator("#step-1 .step-body a").click()
    page.wait_for_selector(".step-page .convo")
    assert page.locator(".convo-reply .msg").inner_text().endswith("It is 18 °C in Paris.")
    raw = page.locator("details.raw-json")
    raw.locator("> summary").click()
    views = raw.locator(".json-view")
    assert views.count() == 2 and views.nth(1).is_visible()
    assert ANSWER in views.nth(1).inner_text()
    page.goto(execution.get_absolute_url() + "steps/2/")
    page.locator("details.step-traceback > summary").click()
    assert page.locator("details.step-traceback pre").inner_text() == TRACEBACK
    assert_no_unexpected_errors(page)
    context.close()
