"""The execution detail page: header, panes (full and htmx), failure view, timeline, security."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Role
from executions.detail import selectors
from executions.models import ArtifactKind, Source, Status, StepKind, StepStatus
from tests.factories import (
    ArtifactFactory,
    BatchFactory,
    ExecutionFactory,
    MembershipFactory,
    ScheduleFactory,
    StepFactory,
    UserFactory,
)

from .detail_html import parse, unsafe_markup

TABS = ["overview", "request", "output", "artifacts", "code", "form"]


def url(execution, query=""):
    return f"/executions/{execution.pk}/{query}"


def htmx(client, path, target):
    return client.get(path, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)


def make_run(agent_version, *, steps=10, status=Status.COMPLETED, nested=True, **fields):
    """A run shaped like a browser agent's: blocks holding thoughts, model/tool calls, actions."""
    execution = ExecutionFactory(
        agent_version=agent_version, status=status, step_count=steps, **fields
    )
    start = execution.started_at
    kinds = [StepKind.THOUGHT, StepKind.MODEL_CALL, StepKind.TOOL_CALL, StepKind.ACTION]
    block = None
    created = []
    for seq in range(1, steps + 1):
        if nested and seq % 10 == 1:
            block = StepFactory(
                execution=execution,
                sequence=seq,
                kind=StepKind.BLOCK,
                name=f"Block {seq}",
                started_at=start + timedelta(milliseconds=seq * 100),
                duration_ms=900,
                input={"block_type": "navigation"},
            )
            created.append(block)
            continue
        kind = kinds[seq % 4]
        created.append(
            StepFactory(
                execution=execution,
                parent=block if nested else None,
                sequence=seq,
                kind=kind,
                name=f"{kind} {seq}",
                started_at=start + timedelta(milliseconds=seq * 100),
                duration_ms=80,
                model="gpt-4o" if kind == StepKind.MODEL_CALL else "",
                prompt_tokens=100 if kind == StepKind.MODEL_CALL else 0,
                completion_tokens=20 if kind == StepKind.MODEL_CALL else 0,
                cost_usd=Decimal("0.0012") if kind == StepKind.MODEL_CALL else 0,
                input={"messages": [{"role": "user", "content": f"prompt {seq}"}]},
                output={"thought": f"I think step {seq} is next."}
                if kind == StepKind.THOUGHT
                else {"ok": True, "seq": seq},
            )
        )
    return execution, created


def make_failed_run(agent_version):
    execution, steps = make_run(
        agent_version,
        steps=6,
        status=Status.FAILED,
        nested=False,
        error="TimeoutError: element 'Download PDF' was not clickable after 30000 ms",
        failure_reason="The portal's download button never became clickable.",
    )
    # #5 is a block that failed because its child #6 failed: #6 is the culprit.
    block = steps[4]
    block.kind, block.status = StepKind.BLOCK, StepStatus.FAILED
    block.save()
    culprit = steps[5]
    culprit.parent, culprit.kind, culprit.status = block, StepKind.ACTION, StepStatus.FAILED
    culprit.input = {"action": "download", "element": "Download PDF"}
    culprit.error = "element not clickable"
    culprit.save()
    ArtifactFactory(execution=execution, step=culprit, name="after-download.png")
    return execution, steps


# ---------------------------------------------------------------------------
# Header and panes


def test_header_shows_status_run_id_and_facts(alice_client, agent_version):
    batch = BatchFactory(workspace=agent_version.agent.workspace, name="March invoices")
    schedule = ScheduleFactory(agent_version=agent_version, name="Nightly")
    original = ExecutionFactory(agent_version=agent_version)
    execution, _ = make_run(
        agent_version,
        batch=batch,
        schedule=schedule,
        rerun_of=original,
        total_tokens=1234,
        prompt_tokens=1000,
        completion_tokens=234,
        source=Source.SCHEDULE,
    )
    doc = parse(alice_client.get(url(execution)).content)
    assert "invoice-extractor" in doc.one("h1").text
    badge = doc.one(id="run-badge").one("span", cls="badge")
    assert badge.attrs["data-status"] == "completed"
    copy = doc.select("button", attr="data-copy")
    assert any(b.attrs["data-copy"] == str(execution.pk) for b in copy)
    facts = {
        div.one("dt").text.strip(): div.one("dd").text.strip()
        for div in doc.one(id="run-facts").select("div")
    }
    assert facts["Duration"] == "3.0 s"
    assert facts["Steps"].startswith("10")
    assert facts["Tokens"].startswith("1,234")
    assert facts["Cost"] == "$0.0123"  # the run's own cost, to its last digit
    assert facts["Credits"] == "1.50"
    assert facts["Batch"] == "March invoices"
    assert facts["Schedule"].startswith("Nightly")
    assert facts["Rerun of"] == original.short_id
    # The original links back to its rerun.
    back = parse(alice_client.get(url(original)).content)
    reruns = {d.one("dt").text: d for d in back.one(id="run-facts").select("div")}["Reruns"]
    assert reruns.one("a").attrs["href"] == execution.get_absolute_url()


def test_the_header_keeps_a_region_for_control_actions(alice_client, agent_version):
    # The control plane fills executions/detail/actions.html; the page gives it a named
    # region in the header that the stream re-renders when the status changes.
    execution, _ = make_run(agent_version, steps=2)
    doc = parse(alice_client.get(url(execution)).content)
    actions = doc.one(id="run-actions")
    assert actions.parent.classes == {"run-title"}


def test_removed_agent_shows_in_grey_with_its_old_name(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=1)
    agent_version.agent.delete()
    doc = parse(alice_client.get(url(execution)).content)
    removed = doc.one("h1").one("span", cls="removed")
    assert removed.text == "Agent removed"
    assert removed.attrs["title"] == "Agent removed: invoice-extractor"


@pytest.mark.parametrize("tab", TABS)
def test_each_pane_renders_as_a_full_page_and_as_an_htmx_fragment(alice_client, agent_version, tab):
    execution, _ = make_run(agent_version, output={"total": 1, "code": "print('hi')"})
    full = alice_client.get(url(execution, f"?tab={tab}"))
    assert full.status_code == 200
    doc = parse(full.content)
    pane = doc.one(id="pane")
    assert pane.attrs["data-tab"] == tab
    current = pane.one("nav", cls="tabs").one("a", cls="is-current")
    assert current.attrs["href"].endswith(f"?tab={tab}")
    assert doc.select(id="run-facts"), "the full page has the header"
    assert "HX-Request" in full["Vary"]

    fragment = htmx(alice_client, url(execution, f"?tab={tab}"), "pane")
    assert fragment.status_code == 200
    assert fragment.content.lstrip().startswith(b'<section id="pane"')
    frag = parse(fragment.content)
    assert frag.one(id="pane").attrs["data-tab"] == tab
    assert not frag.select("html") and not frag.select(id="run-facts")
    assert "HX-Request" in fragment["Vary"]


def test_a_history_restore_request_gets_the_whole_page(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=2)
    response = alice_client.get(
        url(execution, "?tab=output"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="pane",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert b"<html" in response.content
    assert parse(response.content).select(id="run-facts")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?tab=diffs", "tab"),
        ("?step=abc", "step"),
        ("?after=-3", "after"),
        ("?tab=output&view=x", "view"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(alice_client, agent_version, query, field):
    execution, _ = make_run(agent_version, steps=2)
    response = alice_client.get(url(execution, query))
    assert response.status_code == 400
    message = parse(response.content).one("div", cls="alert-error").text
    assert f"“{field}”" in message


def test_a_missing_step_is_404(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=2)
    assert alice_client.get(url(execution, "?step=99")).status_code == 404
    assert alice_client.get(url(execution, "steps/99/")).status_code == 404


def test_the_code_tab_shows_only_when_there_is_code(alice_client, agent_version):
    plain, _ = make_run(agent_version, steps=1)
    tabs = [
        a.text.split()[0]
        for a in parse(alice_client.get(url(plain)).content).one("nav", cls="tabs").select("a")
    ]
    assert "Code" not in tabs
    response = alice_client.get(url(plain, "?tab=code"))
    assert "generated no code" in parse(response.content).one(id="pane").text

    coded, _ = make_run(agent_version, steps=1, output={"code": "def run():\n    return 42\n"})
    ArtifactFactory(
        execution=coded,
        kind=ArtifactKind.CODE,
        name="script.py",
        content_type="text/x-python",
        file=ContentFile(b"import os\nprint(os.getcwd())\n", name="script.py"),
    )
    doc = parse(alice_client.get(url(coded, "?tab=code")).content)
    tabs = [a.text.split()[0] for a in doc.one("nav", cls="tabs").select("a")]
    assert "Code" in tabs
    names = [h.text for h in doc.select("h2", cls="panel-title")]
    assert names == ["output.code", "script.py"]
    # Pygments spans: a keyword and a function name, not raw text.
    assert doc.select("span", cls="k") and doc.select("span", cls="nf")


# ---------------------------------------------------------------------------
# Failure view


def test_failure_box_names_the_failing_step_its_input_and_what_worked(alice_client, agent_version):
    execution, _steps = make_failed_run(agent_version)
    doc = parse(alice_client.get(url(execution)).content)
    box = doc.one("div", cls="failure-box")
    assert "never became clickable" in box.one("p", cls="failure-reason").text
    assert "TimeoutError" in box.one("pre", cls="failure-error").text
    link = box.one("a", cls="failing-link")
    assert link.attrs["href"].endswith("?tab=overview&step=6#step-6")
    assert "#6" in link.text
    # The input of the failing step, as JSON.
    assert '"Download PDF"' in box.one("div", cls="json-view").text
    # The successful steps before it, oldest first; the failed block is not among them.
    before = [li.text for li in box.one("ol", cls="before-list").select("li")]
    assert [t.split()[1] for t in before] == ["#1", "#2", "#3", "#4"]
    # The failing card is highlighted in the timeline, and the inspector shows it.
    card = doc.one("li", id="step-6")
    assert {"is-failing", "is-selected"} <= card.classes
    assert "is-failing" not in doc.one("li", id="step-5").classes
    inspector = doc.one(id="inspector")
    assert inspector.attrs["data-seq"] == "6"
    assert inspector.select("img")[0].attrs["src"].startswith("/executions/artifacts/")


def test_a_completed_run_has_no_failure_box(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=3, summary="All **good**.")
    doc = parse(alice_client.get(url(execution)).content)
    assert not doc.select(cls="failure-box")
    summary = doc.one("div", cls="summary-text")
    assert summary.one("strong").text == "good"


def test_a_failed_run_without_steps_shows_the_execution_input(alice_client, agent_version):
    execution = ExecutionFactory(
        agent_version=agent_version, status=Status.FAILED, error="Boom", input={"file": "x.pdf"}
    )
    box = parse(alice_client.get(url(execution)).content).one("div", cls="failure-box")
    assert "Boom" in box.text
    assert '"x.pdf"' in box.one("div", cls="json-view").text
    assert not box.select("a", cls="failing-link")


# ---------------------------------------------------------------------------
# Overview: timeline, inspector, pages


def test_timeline_cards_nest_and_count(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=12)
    ArtifactFactory(execution=execution, step=execution.steps.get(sequence=3))
    doc = parse(alice_client.get(url(execution)).content)
    cards = doc.one(id="timeline-steps").select("li", cls="step")
    assert [c.attrs["id"] for c in cards] == [f"step-{n}" for n in range(1, 13)]
    assert "d0" in cards[0].classes and "d1" in cards[1].classes
    block = cards[0]
    assert "kind-block" in block.classes
    assert "9 steps inside" in block.one("div", cls="step-meta").text
    model = doc.one("li", id="step-5")
    assert "gpt-4o" in model.text and "100 → 20 tok" in model.text
    # Waterfall: an SVG bar positioned in percent of the run.
    bar = model.one("rect", cls="wf-bar")
    assert bar.attrs["x"].endswith("%") and bar.attrs["width"].endswith("%")
    thought = doc.one("li", id="step-4")
    assert thought.one("p", cls="step-text").text == "I think step 4 is next."
    action = doc.one("li", id="step-3")
    assert action.select("img", cls="step-thumb")
    counters = doc.one(id="step-counters").text.split()
    assert counters[:4] == ["12", "steps", "2", "actions"]


def test_selecting_a_step_swaps_the_inspector(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=5)
    full = parse(alice_client.get(url(execution, "?step=3")).content)
    assert full.one(id="inspector").attrs["data-seq"] == "3"
    assert "is-selected" in full.one("li", id="step-3").classes

    response = htmx(alice_client, url(execution, "?tab=overview&step=4"), "inspector")
    assert response.content.lstrip().startswith(b'<aside id="inspector"')
    fragment = parse(response.content)
    inspector = fragment.one(id="inspector")
    assert inspector.attrs["data-seq"] == "4"
    assert "data-follow" not in inspector.attrs
    assert "Input" in [h.text for h in inspector.select("h4")]


def test_the_card_expands_to_its_full_input_and_output(alice_client, agent_version):
    execution, steps = make_run(agent_version, steps=3)
    step = steps[1]
    step.input = {"text": "x" * 20_000}
    step.output = {"rows": list(range(3000))}
    step.save()
    response = htmx(alice_client, url(execution, "steps/2/"), "step-body")
    doc = parse(response.content)
    assert not doc.select("html")
    views = doc.select("div", cls="json-view")
    assert len(views) == 2
    # Long strings and long payloads are cut, with a link to everything.
    assert views[0].select("span", cls="jcut")
    assert len(views[1].select(cls="jl")) == 400
    show_all = [a for a in doc.select("a") if a.text.startswith("Show all")]
    assert show_all and show_all[0].attrs["href"].endswith("/steps/2/?full=1")

    page = parse(alice_client.get(url(execution, "steps/2/?full=1")).content)
    assert page.select("main")
    full_input, full_output = page.select("div", cls="json-view")[:2]
    assert not full_input.select("span", cls="jcut")
    assert len(full_output.select(cls="jl")) == 3004


def test_steps_load_in_pages(alice_client, agent_version):
    page = selectors.STEP_PAGE_SIZE
    execution, _ = make_run(agent_version, steps=page * 2 + page // 2, nested=False)
    doc = parse(alice_client.get(url(execution)).content)
    cards = doc.one(id="timeline-steps").select("li", cls="step")
    assert len(cards) == page
    more = doc.one(id="timeline-more").one("a")
    assert more.attrs["href"].endswith(f"?tab=overview&after={page}")
    assert more.attrs["hx-trigger"] == "click, revealed"

    second = htmx(alice_client, url(execution, f"?tab=overview&after={page}"), "timeline-more")
    rows = parse(second.content)
    ids = [c.attrs["id"] for c in rows.select("li", cls="step")]
    assert ids[0] == f"step-{page + 1}" and ids[-1] == f"step-{page * 2}"
    assert rows.one(id="timeline-more").one("a").attrs["href"].endswith(f"after={page * 2}")

    last = parse(
        htmx(
            alice_client, url(execution, f"?tab=overview&after={page * 2}"), "timeline-more"
        ).content
    )
    assert len(last.select("li", cls="step")) == page // 2
    assert not last.select(id="timeline-more")

    # Without JavaScript the same link is a page of its own, with a way back.
    plain = parse(alice_client.get(url(execution, f"?tab=overview&after={page * 2}")).content)
    back = plain.one("a", cls="timeline-earlier").attrs["href"]
    assert back.endswith(f"?tab=overview&after={page}")


def test_a_deep_linked_step_opens_its_page_of_the_timeline(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=300)
    doc = parse(alice_client.get(url(execution, "?step=230")).content)
    ids = [c.attrs["id"] for c in doc.one(id="timeline-steps").select("li", cls="step")]
    assert "step-230" in ids
    assert ids[0] == "step-225"
    # Children whose block is on an earlier page still sit one level in.
    assert "d1" in doc.one("li", id="step-225").classes
    assert doc.one("a", cls="timeline-earlier")


def test_query_count_does_not_grow_with_steps(
    alice_client, agent_version, django_assert_num_queries
):
    small, _ = make_run(agent_version, steps=10)
    big, _ = make_run(agent_version, steps=200)
    for execution in (small, big):
        for step in execution.steps.filter(kind=StepKind.ACTION)[:5]:
            ArtifactFactory(execution=execution, step=step)
    alice_client.get(url(small))  # session and workspace settle on the first request
    with CaptureQueriesContext(connection) as small_queries:
        alice_client.get(url(small))
    with django_assert_num_queries(len(small_queries)):
        response = alice_client.get(url(big))
    assert len(parse(response.content).select("li", cls="step")) == selectors.STEP_PAGE_SIZE
    # And a fixed number at that: a regression shows up here first.
    assert len(small_queries) <= 16, [q["sql"][:80] for q in small_queries.captured_queries]

    for tab in ("request", "output", "artifacts", "form"):
        with CaptureQueriesContext(connection) as small_queries:
            alice_client.get(url(small, f"?tab={tab}"))
        with django_assert_num_queries(len(small_queries)):
            alice_client.get(url(big, f"?tab={tab}"))


# ---------------------------------------------------------------------------
# Request, output, artifacts, form


def test_request_pane_shows_inputs_metadata_config_and_redacted_headers(
    alice_client, agent_version
):
    execution, _ = make_run(
        agent_version,
        steps=1,
        input={"file": "https://example.com/a.pdf", "pages": [1, 2]},
        metadata={"customer": "acme"},
        request={
            "method": "POST",
            "path": "/api/v1/executions",
            "headers": {"Authorization": "Bearer rb_live_secret", "X-Trace": "abc"},
            "body": {"agent": "invoice-extractor:v1"},
        },
    )
    response = alice_client.get(url(execution, "?tab=request"))
    assert b"rb_live_secret" not in response.content
    doc = parse(response.content)
    rows = {
        tr.one("th").text: tr.one("td").text.strip()
        for table in doc.select("table", cls="kv")
        for tr in table.select("tr")
    }
    assert rows["file"] == "https://example.com/a.pdf"
    assert rows["customer"] == "acme"
    assert rows["Authorization"] == "[redacted]"
    assert rows["X-Trace"] == "abc"
    (config,) = [
        section
        for section in doc.select("section", cls="panel")
        if section.one("h2").text.startswith("Agent version config")
    ]
    # The version's config (the factory's model and prompt), as JSON.
    assert '"gpt-4o-mini"' in config.text and '"Extract."' in config.text
    curl = doc.one("textarea", id=f"curl-{execution.short_id}").text
    assert curl.startswith(
        "curl -X POST http://testserver/api/v1/agents/invoice-extractor:v1/execute"
    )


def test_the_api_panel_loads_on_its_own(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=1)
    header = parse(alice_client.get(url(execution)).content).one("details", cls="api-pop")
    lazy = header.one(id="api-panel")
    assert lazy.attrs["hx-trigger"] == "toggle once from:closest details"
    assert lazy.one("a").attrs["href"].endswith("?tab=request#reproduce")
    response = htmx(alice_client, url(execution, "?tab=request"), "api-panel")
    panel = parse(response.content).one(id="api-panel")
    assert "api-panel" in panel.classes
    assert "requests.post(" in panel.one("textarea", id=f"py-{execution.short_id}").text


def test_output_pane_json_markdown_and_truncation(alice_client, agent_version):
    output = {"title": "Q3 report", "markdown": "# Revenue\n\nUp **12%**.", "rows": list(range(5))}
    execution, _ = make_run(agent_version, steps=1, output=output)
    doc = parse(alice_client.get(url(execution, "?tab=output")).content)
    box = doc.one("div", cls="json-box")
    lines = box.select(cls="jl")
    assert lines[0].one("span", cls="ln").attrs["data-n"] == "1"
    assert len(box.select("details", cls="jd")) == 2  # the object and the rows array
    assert {k.text for k in box.select("span", cls="jk")} == {'"title"', '"markdown"', '"rows"'}
    assert "hidden" in doc.one(attr="data-json-tools").attrs  # shown by JS

    md = parse(alice_client.get(url(execution, "?tab=output&view=markdown")).content)
    rendered = md.one("div", cls="md-rendered")
    assert rendered.one("h1").text == "Revenue" and rendered.one("strong").text == "12%"
    raw = parse(alice_client.get(url(execution, "?tab=output&view=markdown&raw=1")).content)
    assert raw.one("pre", cls="md-raw").text.startswith("# Revenue")

    big, _ = make_run(agent_version, steps=1, output={"rows": [{"n": i} for i in range(3000)]})
    doc = parse(alice_client.get(url(big, "?tab=output")).content)
    assert len(doc.one("div", cls="json-box").select(cls="jl")) == 2000
    note = doc.one("p", cls="truncated-note")
    assert note.select("a")[0].attrs["href"].endswith("?tab=output&full=1")
    doc = parse(alice_client.get(url(big, "?tab=output&full=1")).content)
    assert len(doc.one("div", cls="json-box").select(cls="jl")) > 9000


def test_output_download_is_the_whole_json(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=1, output={"a": [1, 2, 3]})
    response = alice_client.get(url(execution, "output.json"))
    assert response.json() == {"a": [1, 2, 3]}
    assert "attachment" in response["Content-Disposition"]


def test_artifacts_pane_draws_boxes_and_plays_video(alice_client, agent_version):
    execution, steps = make_run(agent_version, steps=2)
    ArtifactFactory(
        execution=execution,
        step=steps[1],
        name="invoice.png",
        bounding_boxes=[
            {
                "label": "total",
                "x": 0.1,
                "y": 0.2,
                "width": 0.3,
                "height": 0.05,
                "confidence": 0.97,
            },
            {"label": "date", "x": 0.5, "y": 0.1, "width": 0.2, "height": 0.04, "accuracy": 0.6},
            {"label": "broken", "x": "left"},
        ],
    )
    ArtifactFactory(
        execution=execution,
        kind=ArtifactKind.VIDEO,
        name="recording.webm",
        content_type="video/webm",
        file=ContentFile(b"\x1a\x45\xdf\xa3", name="recording.webm"),
    )
    doc = parse(alice_client.get(url(execution, "?tab=artifacts")).content)
    boxes = doc.select("g", cls="bbox")
    assert len(boxes) == 2
    rect = boxes[0].one("rect")
    assert (rect.attrs["x"], rect.attrs["y"], rect.attrs["width"], rect.attrs["height"]) == (
        "10.00%",
        "20.00%",
        "30.00%",
        "5.00%",
    )
    assert "lvl-high" in boxes[0].classes and "lvl-low" in boxes[1].classes
    assert boxes[0].one("span", cls="bbox-label").text == "total · 97%"
    legend = [li.text for li in doc.one("ul", cls="bbox-legend").select("li")]
    assert "accuracy 60.0%" in legend[1]
    video = doc.one("video")
    assert video.attrs["src"].startswith("/executions/artifacts/") and "controls" in video.attrs
    assert len(doc.select("a", attr="download")) == 2


# ---------------------------------------------------------------------------
# Live page hooks


def test_a_running_execution_subscribes_to_its_stream(alice_client, agent_version):
    running, _ = make_run(agent_version, status=Status.RUNNING, steps=3)
    doc = parse(alice_client.get(url(running)).content)
    run = doc.one(id="run")
    assert run.attrs["data-stream"] == f"/executions/{running.pk}/stream?after=3"
    assert doc.one(id="run-badge").select("span", cls="live-pill")
    done, _ = make_run(agent_version, steps=3)
    assert "data-stream" not in parse(alice_client.get(url(done)).content).one(id="run").attrs


# ---------------------------------------------------------------------------
# Security


def test_another_workspaces_execution_step_and_artifact_are_404(charlie_client, agent_version):
    execution, steps = make_run(agent_version, steps=2)
    artifact = ArtifactFactory(execution=execution, step=steps[0])
    for path in (
        url(execution),
        url(execution, "?tab=output"),
        url(execution, "steps/1/"),
        url(execution, "stream"),
        url(execution, "output.json"),
        url(execution, "request.json"),
        f"/executions/artifacts/{artifact.pk}/",
    ):
        assert charlie_client.get(path).status_code == 404, path


def test_artifacts_are_served_only_to_members(client, agent_version, alice):
    execution, _ = make_run(agent_version, steps=1)
    artifact = ArtifactFactory(execution=execution)
    path = f"/executions/artifacts/{artifact.pk}/"
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    outsider = UserFactory(username="mallory")  # a user with no workspace at all
    client.force_login(outsider)
    assert client.get(path).status_code == 403
    client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    with artifact.file.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()
    download = client.get(path + "?download=1")
    assert download["Content-Disposition"].startswith("attachment")


def test_a_scriptable_artifact_is_never_served_inline(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=1)
    svg = ArtifactFactory(
        execution=execution,
        name="evil.svg",
        content_type="image/svg+xml",
        file=ContentFile(
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', name="e.svg"
        ),
    )
    response = alice_client.get(f"/executions/artifacts/{svg.pk}/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


def test_a_viewer_sees_the_page(client, agent_version, workspace):
    execution, _ = make_run(agent_version, steps=1)
    viewer = UserFactory(username="vera")
    MembershipFactory(user=viewer, workspace=workspace, role=Role.VIEWER)
    client.force_login(viewer)
    response = client.get(url(execution))
    assert response.status_code == 200
    doc = parse(response.content)
    # The run itself: its id, agent and steps, as anyone in the workspace sees them.
    assert execution.short_id in doc.text and agent_version.agent.name in doc.text
    assert doc.select(id="step-1")
    # A viewer acts on nothing: no cancel, rerun, approve or reject.
    html = response.content.decode()
    for action in ("cancel", "rerun", "approve", "reject"):
        assert f"/executions/{execution.pk}/{action}" not in html


XSS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "[click me](javascript:alert(1))",
    '<a href="javascript:alert(1)">link</a>',
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "<iframe src=//evil.example></iframe>",
]


def test_hostile_content_is_escaped_or_sanitized_everywhere(alice_client, agent_version):
    payload = "\n\n".join(XSS)
    agent_version.agent.name = XSS[0]
    agent_version.agent.save()
    agent_version.version = XSS[1]
    agent_version.config = {"prompt": payload}
    agent_version.save()
    execution, steps = make_run(
        agent_version,
        steps=3,
        status=Status.FAILED,
        agent_name=XSS[0],
        version_name=XSS[1],
        output={"markdown": payload, XSS[4]: XSS[5], "code": payload},
        summary=payload,
        error=payload,
        failure_reason=payload,
        metadata={XSS[2]: XSS[3], "link": XSS[5]},
        input={"url": XSS[5], "html": XSS[1]},
        request={"method": "POST", "path": XSS[3], "headers": {XSS[0]: XSS[1]}, "body": XSS[6]},
    )
    for step in steps:
        step.name, step.error, step.model = XSS[4], payload, XSS[0]
        step.input, step.output = {"html": payload}, payload
        step.attributes = {XSS[1]: XSS[2]}
        step.status = StepStatus.FAILED
        step.save()
    ArtifactFactory(
        execution=execution,
        step=steps[1],
        name=XSS[1],
        bounding_boxes=[{"label": XSS[0], "x": 0, "y": 0, "width": 1, "height": 1}],
    )
    pages = [url(execution, f"?tab={tab}") for tab in TABS]
    pages += [
        url(execution, "?tab=output&view=markdown"),
        url(execution, "?tab=output&view=markdown&raw=1"),
    ]
    pages += [url(execution, "steps/2/"), url(execution, "?step=2")]
    for path in pages:
        response = alice_client.get(path)
        assert response.status_code == 200, path
        assert unsafe_markup(response.content) == [], path
    rendered = parse(alice_client.get(url(execution, "?tab=output&view=markdown")).content)
    md = rendered.one("div", cls="md-rendered")
    assert "<script>" in md.text  # shown as text, not run
    assert all(not a.attrs.get("href", "").startswith("javascript") for a in md.select("a"))


def test_the_output_shows_grounding_beside_the_json(alice_client, agent_version):
    execution, _ = make_run(agent_version, steps=1, output={"total": 39.75})
    ArtifactFactory(
        execution=execution,
        name="receipt.png",
        bounding_boxes=[{"label": "total", "x": 0.1, "y": 0.8, "width": 0.8, "height": 0.05}],
    )
    doc = parse(alice_client.get(url(execution, "?tab=output")).content)
    grid = doc.one("div", cls="output-grid")
    assert "has-grounding" in grid.classes
    aside = grid.one("aside", cls="output-grounding")
    assert aside.one("span", cls="bbox-label").text == "total"
    plain, _ = make_run(agent_version, steps=1)
    doc = parse(alice_client.get(url(plain, "?tab=output")).content)
    assert not doc.select("aside", cls="output-grounding")


def test_without_failure_or_screenshots_the_inspector_shows_the_last_step(
    alice_client, agent_version
):
    execution, _ = make_run(agent_version, steps=4, nested=False)
    inspector = parse(alice_client.get(url(execution)).content).one(id="inspector")
    assert inspector.attrs["data-seq"] == "4" and "data-follow" in inspector.attrs


def test_a_running_execution_opens_on_its_newest_steps(alice_client, agent_version):
    page = selectors.STEP_PAGE_SIZE
    execution, _ = make_run(agent_version, steps=page + 20, status=Status.RUNNING, nested=False)
    doc = parse(alice_client.get(url(execution)).content)
    ids = [c.attrs["id"] for c in doc.one(id="timeline-steps").select("li", cls="step")]
    assert ids[0] == "step-21" and ids[-1] == f"step-{page + 20}"
    assert not doc.select(id="timeline-more")  # the tail: live steps append below
    assert doc.one("a", cls="timeline-earlier")
    # A finished run opens on its first steps.
    done, _ = make_run(agent_version, steps=page + 20, nested=False)
    ids = [
        c.attrs["id"] for c in parse(alice_client.get(url(done)).content).select("li", cls="step")
    ]
    assert ids[0] == "step-1"
