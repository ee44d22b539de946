"""Safe Markdown, the JSON viewer, previews, the read-only form and code highlighting."""

import json

import pytest

from executions.detail import rendering

from .detail_html import parse, unsafe_markup

MARKDOWN_XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[a](javascript:alert(1))",
    "[a](JaVaScRiPt:alert(1))",
    "[a](  javascript:alert(1))",
    "[a](vbscript:msgbox(1))",
    "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg/onload=alert(1)>",
    "<iframe src='https://evil.example'></iframe>",
    "<details open ontoggle=alert(1)>",
    "`<script>` in code is fine",
    "<style>body{display:none}</style>",
    "[ok](https://example.com) <b onmouseover=alert(1)>x</b>",
    "<<script>script>alert(1)<</script>/script>",
]


@pytest.mark.parametrize("source", MARKDOWN_XSS)
def test_markdown_never_lets_script_through(source):
    html = rendering.render_markdown(source)
    assert unsafe_markup(html) == []
    doc = parse(html)
    assert not doc.select("script") and not doc.select("style") and not doc.select("img")
    for a in doc.select("a"):
        assert a.attrs["href"].startswith(("http://", "https://", "mailto:"))
        assert "noopener" in a.attrs["rel"]


def test_markdown_renders_the_usual_things():
    html = rendering.render_markdown(
        "# Title\n\nSome **bold** and `code`.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"
        "\n\n[docs](https://example.com/docs)"
    )
    doc = parse(html)
    assert doc.one("h1").text == "Title"
    assert doc.one("strong").text == "bold"
    assert [li.text for li in doc.select("li")] == ["one", "two"]
    assert [td.text for td in doc.select("td")] == ["1", "2"]
    assert doc.one("a").attrs["href"] == "https://example.com/docs"


def test_markdown_source_prefers_text_and_falls_back_to_a_document():
    assert rendering.markdown_source("# hi") == ("# hi", "the output")
    text, origin = rendering.markdown_source({"answer": "**yes**", "n": 1})
    assert text == "**yes**" and "answer" in origin
    text, _ = rendering.markdown_source({"vendor": {"name": "Acme"}, "total": 10})
    doc = parse(rendering.render_markdown(text))
    assert doc.one("h2").text == "vendor"
    assert "total: 10" in doc.text.replace("\n", " ")


def test_json_view_escapes_highlights_and_numbers_lines():
    value = {"<b>key</b>": "</span><script>alert(1)</script>", "n": 1.5, "ok": True, "none": None}
    view = rendering.json_html(value)
    assert unsafe_markup(view.html) == []
    doc = parse(view.html)
    lines = doc.select(cls="jl")
    assert [line.one("span", cls="ln").attrs["data-n"] for line in lines] == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
    ]
    assert doc.select("span", cls="jk")[0].text == '"<b>key</b>"'
    assert doc.select("span", cls="js")[0].text == '"</span><script>alert(1)</script>"'
    assert doc.one("span", cls="jn").text == "1.5"
    assert doc.one("span", cls="jb").text == "true"
    assert doc.one("span", cls="jz").text == "null"
    # The text of the view is the pretty JSON itself (what copy and search see).
    text = "".join(_visible_text(line) for line in lines)
    assert json.loads(text) == value


def _visible_text(node) -> str:
    """Text of a line as shown with its node open: no fold hint."""
    parts = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(child)
        elif "jfold" not in child.classes:
            parts.append(_visible_text(child))
    return "".join(parts)


def test_json_view_nodes_collapse_and_nest():
    view = rendering.json_html({"a": [1, {"b": []}], "c": {}})
    doc = parse(view.html)
    details = doc.select("details", cls="jd")
    assert len(details) == 3  # the root, "a", and {"b": []}; empty containers stay one line
    assert all("open" in d.attrs for d in details)
    assert details[0].select("span", cls="jfold")[0].text.strip() == "2 keys"
    assert view.lines == 9 and not view.truncated


def test_json_view_budget_cuts_lines_and_strings():
    value = {"rows": list(range(100)), "long": "x" * 50}
    view = rendering.json_html(value, max_lines=10, max_string=20)
    assert view.truncated and view.lines == 10
    assert view.size == len(json.dumps(value).encode())
    doc = parse(view.html)
    assert len(doc.select(cls="jl")) == 10
    # Even cut short, the tags balance: every <details> closed.
    assert view.html.count("<details") == view.html.count("</details>")
    short = rendering.json_html({"long": "x" * 50}, max_string=20)
    assert "+30 characters" in parse(short.html).one("span", cls="jcut").text
    everything = rendering.json_html(value, max_lines=None, max_string=None)
    assert not everything.truncated and everything.lines == 105


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            '{"thought": "I will click the button now because the form is filled in."}',
            "I will click the button now because the form is filled in.",
        ),
        ('{"action": "click", "element": "Sign in"}', '{"action": "click", "element": "Sign in"}'),
        ('"just a string"', "just a string"),
        ('"cut in the mid\\u00', "cut in the mid"),
        ('{"messages": [{"role": "user", "content": "hello   there"}]}', "hello there"),
        ('{"a": "unterminated', '{"a": "unterminated'),
        ("", ""),
        (None, ""),
    ],
)
def test_previews_read_heads_of_payloads(head, expected):
    assert rendering.preview_from_head(head) == expected


def test_previews_are_cut_to_a_limit():
    text = rendering.preview_text("word " * 200, limit=30)
    assert len(text) <= 30 and text.endswith("…")


def test_form_is_read_only_escaped_and_addressed_by_json_pointer():
    html = rendering.json_form_html(
        {"a/b": {"~x": "<script>"}, "list": [True, None, 3, "line\nbreak"]}
    )
    assert unsafe_markup(html) == []
    doc = parse(html)
    pointers = [el.attrs["data-pointer"] for el in doc.select() if "data-pointer" in el.attrs]
    assert "/a~1b/~0x" in pointers and "/list/3" in pointers
    text_input = next(i for i in doc.select("input") if i.attrs["data-pointer"] == "/a~1b/~0x")
    assert text_input.attrs["value"] == "<script>" and "readonly" in text_input.attrs
    assert doc.one("textarea").text == "line\nbreak"
    checkbox = next(i for i in doc.select("input") if i.attrs.get("type") == "checkbox")
    assert "disabled" in checkbox.attrs and "checked" in checkbox.attrs


def test_code_is_highlighted_and_escaped():
    html = rendering.highlight_code("def f():\n    return '<script>'\n", filename="x.py")
    doc = parse(html)
    assert doc.select("span", cls="k") and doc.one("span", cls="nf").text == "f"
    assert unsafe_markup(html) == []
    plain = rendering.highlight_code("just <b>text</b>", language="nonsense-language")
    assert "&lt;b&gt;" in plain


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, {"b": []}, 'x"y'], "c": {}, "d": None, "e": True, "f": -1.5e3},
        {"g": {"h": {"i": [[], [1], {"j": "k"}]}}},
        [],
        {},
        "a string",
        42,
        [[[]]],
    ],
)
def test_a_head_reads_like_the_whole_value(value):
    from_value = [
        _visible_text(line) for line in parse(rendering.json_html(value).html).select(cls="jl")
    ]
    text = rendering.json_text_html(json.dumps(value))
    from_text = [_visible_text(line) for line in parse(text.html).select(cls="jl")]
    assert from_text == from_value
    assert not text.truncated


def test_a_head_cut_anywhere_still_nests_and_says_it_was_cut():
    text = json.dumps({"rows": [{"n": i, "s": "x" * 30} for i in range(50)]})
    for cut in range(1, len(text), 37):
        view = rendering.json_text_html(text[:cut], cut=True)
        assert view.truncated, cut
        assert view.html.count("<details") == view.html.count("</details>"), cut
        assert unsafe_markup(view.html) == []
    # A number at the very end of a head may be missing digits: it is left out.
    last = parse(rendering.json_text_html('{"n": 12', cut=True).html).select(cls="jl")
    assert "12" not in "".join(line.text for line in last)


def test_payload_view_decodes_a_whole_head_and_reads_a_cut_one():
    whole = rendering.payload_view('{"a": [1, 2]}', chars=100)
    assert not whole.truncated and "2 items" in whole.html
    cut = rendering.payload_view('{"a": [1, 2', chars=11)
    assert cut.truncated and cut.size == 0
    assert rendering.payload_view(None, chars=10) is None


def test_a_report_field_written_in_markdown_is_rendered_not_laid_out():
    """The demo's daily report: Markdown in "report", beside numbers."""
    report = (
        "# Sales report\n\n**Revenue** 1,200 EUR.\n\n"
        "| Region | Orders |\n|---|---:|\n| North | 12 |\n\n- one\n- two\n"
    )
    text, origin = rendering.markdown_source({"report": report, "kpis": {"orders": 12}})
    assert text == report and "report" in origin
    # Any field name, as long as it reads as Markdown; plain strings do not.
    assert rendering.markdown_source({"kpis": {}, "digest": report})[0] == report
    assert "laid out" in rendering.markdown_source({"note": "plain words", "n": 1})[1]
    doc = parse(str(rendering.render_markdown(text)))
    assert doc.one("h1").text == "Sales report"
    assert doc.one("strong").text == "Revenue"
    assert [td.text for td in doc.select("td")] == ["North", "12"]
    assert len(doc.select("li")) == 2
    assert not doc.select("pre")


@pytest.mark.django_db
def test_the_output_tab_renders_the_report_as_html(alice_client, agent_version):
    from tests.factories import ExecutionFactory

    execution = ExecutionFactory(
        agent_version=agent_version,
        output={"report": "# Daily\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "kpis": {"n": 1}},
    )
    page = alice_client.get(f"/executions/{execution.pk}/?tab=output&view=markdown")
    rendered = parse(page.content).one("div", cls="md-rendered")
    assert rendered.one("h1").text == "Daily"
    assert rendered.one("table")
    assert not rendered.select("pre")
