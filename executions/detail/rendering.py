"""Turning what agents report into safe, readable HTML.

Everything here treats its input as hostile: outputs, step payloads, metadata and
names come from agent runtimes, so JSON is escaped token by token, Markdown goes
through markdown-it (raw HTML off) and then nh3, and code goes through Pygments.
Big payloads are cut to a budget with a note saying how much was left out, so a
1 MB output never turns into a 20 MB page unless someone asks for all of it.

Over 500 lines on purpose: every renderer here shares the escaping and the size budgets,
and keeping them side by side is how a reviewer checks that none of them lets HTML through.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from html import escape
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, TextLexer, get_lexer_by_name, guess_lexer_for_filename
from pygments.util import ClassNotFound

# Budgets: how much of a payload a page renders before offering "show all".
DEFAULT_MAX_LINES = 2000
DEFAULT_MAX_STRING = 4000
PREVIEW_CHARS = 280

# ---------------------------------------------------------------------------
# Markdown

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody",
    "tr", "th", "td",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML that is safe to put in a page.

    markdown-it with raw HTML disabled already escapes tags and refuses
    javascript: links; nh3 is the second wall, so a future option flip or parser
    bug cannot let a <script>, an on* handler or a javascript: URL through.
    Images are dropped: the CSP would block remote ones anyway, and a tracking
    pixel in an agent's output has no business loading in an operator's browser.
    """
    if not text:
        return mark_safe("")
    html = _md.render(str(text))
    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # sanitized by nh3 just above


_MARKDOWN_KEYS = (
    "markdown", "md", "report", "content", "text", "response", "answer", "summary", "result",
    "body", "message",
)  # fmt: skip
# A heading, emphasis, a table rule, a list item or a fence: text written as Markdown.
_LOOKS_MARKDOWN = re.compile(r"(^|\n)(#{1,6} |[-*+] |\d+\. |```)|\*\*\S|\|\s*:?-{3,}", re.M)


def looks_like_markdown(text: str) -> bool:
    return "\n" in text and bool(_LOOKS_MARKDOWN.search(text))


def markdown_source(output: Any) -> tuple[str, str]:
    """The Markdown an output carries, and where it came from.

    A string output is Markdown itself; an object offers its first long string
    field among the usual names; anything else is laid out as a Markdown document
    (headings for keys, lists for arrays) so the Markdown view is never empty.
    """
    if output is None:
        return "", ""
    if isinstance(output, str):
        return output, "the output"
    if isinstance(output, dict):
        for key in _MARKDOWN_KEYS:
            value = output.get(key)
            if isinstance(value, str) and value.strip():
                return value, f"the output's “{key}” field"
        # Any other field written as Markdown (a report beside its figures).
        for key, value in output.items():
            if isinstance(value, str) and looks_like_markdown(value):
                return value, f"the output's “{key}” field"
    return _json_to_markdown(output), "the output, laid out as a document"


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|>])", r"\\\1", text)


def _json_to_markdown(value: Any, depth: int = 0, lines: list[str] | None = None) -> str:
    lines = [] if lines is None else lines
    pad = "  " * max(depth - 2, 0)
    if isinstance(value, dict):
        for key, item in value.items():
            label = _md_escape(str(key))
            if isinstance(item, dict | list) and item:
                if depth < 2:
                    lines.append(f"{'#' * (depth + 2)} {label}\n")
                else:
                    lines.append(f"{pad}- **{label}**")
                _json_to_markdown(item, depth + 1, lines)
                if depth < 2:
                    lines.append("")
            elif isinstance(item, str) and "\n" in item:
                # Several lines (code, an address, a letter) keep their shape.
                fence = "~" * max(3, max((len(r) for r in re.findall(r"~+", item)), default=0) + 1)
                lines.append(f"{pad}- **{label}**:\n")
                lines.append(f"{pad}  {fence}")
                lines.extend(f"{pad}  {row}" for row in item.splitlines())
                lines.append(f"{pad}  {fence}")
            else:
                lines.append(f"{pad}- **{label}**: {_md_scalar(item)}")
    elif isinstance(value, list):
        for index, item in enumerate(value, 1):
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}- **{index}.**")
                _json_to_markdown(item, max(depth + 1, 3), lines)
            else:
                lines.append(f"{pad}- {_md_scalar(item)}")
    else:
        lines.append(_md_scalar(value))
    return "\n".join(lines)


def _md_scalar(value: Any) -> str:
    if value is None:
        return "*null*"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return "*empty*"
    return _md_escape(str(value))


# ---------------------------------------------------------------------------
# JSON viewer


@dataclass
class JsonView:
    html: SafeString
    lines: int  # lines rendered
    truncated: bool  # True when the line budget cut the value short
    size: int = 0  # bytes of the compact JSON, filled in when truncated


class _Budget(Exception):
    pass


class _JsonWriter:
    """Pretty-prints JSON into lines of highlighted, escaped spans.

    Each line is a .jl span whose line number lives in data-n (drawn by CSS, so
    copying the text never copies the numbers). Every object or array that
    spans lines is a <details open>, so nodes collapse with no script at all.
    """

    def __init__(self, max_lines: int | None, max_string: int | None):
        self.parts: list[str] = []
        self.n = 0
        self.max_lines = max_lines
        self.max_string = max_string

    def _line(self, depth: int, body: str) -> None:
        if self.max_lines is not None and self.n >= self.max_lines:
            raise _Budget
        self.n += 1
        self.parts.append(
            f'<span class="jl"><span class="ln" data-n="{self.n}"></span>'
            f'<span class="jt"></span>{"  " * depth}{body}</span>\n'
        )

    def _string(self, value: str, cls: str = "js") -> str:
        if self.max_string is not None and len(value) > self.max_string:
            more = len(value) - self.max_string
            text = json.dumps(value[: self.max_string], ensure_ascii=False)[:-1]
            return (
                f'<span class="{cls}">{escape(text)}…"</span>'
                f'<span class="jcut"> +{more:,} characters</span>'
            )
        return f'<span class="{cls}">{escape(json.dumps(value, ensure_ascii=False))}</span>'

    def _scalar(self, value: Any) -> str:
        if isinstance(value, str):
            return self._string(value)
        if value is None:
            return '<span class="jz">null</span>'
        if isinstance(value, bool):
            return f'<span class="jb">{"true" if value else "false"}</span>'
        if isinstance(value, int | float):
            return f'<span class="jn">{escape(json.dumps(value))}</span>'
        # Decimals and other JSON-able oddities from Python callers.
        return self._string(str(value))

    def write(self, value: Any, depth: int = 0, prefix: str = "", comma: str = "") -> None:
        is_dict = isinstance(value, dict)
        if not (is_dict or isinstance(value, list)) or not value:
            if is_dict:
                body = '<span class="jp">{}</span>'
            elif isinstance(value, list):
                body = '<span class="jp">[]</span>'
            else:
                body = self._scalar(value)
            self._line(depth, f"{prefix}{body}{comma}")
            return
        opener, closer = ("{", "}") if is_dict else ("[", "]")
        count = len(value)
        noun = ("key" if count == 1 else "keys") if is_dict else ("item" if count == 1 else "items")
        if self.max_lines is not None and self.n >= self.max_lines:
            raise _Budget
        self.n += 1
        self.parts.append(
            f'<details class="jd" open><summary class="jl"><span class="ln" data-n="{self.n}">'
            f'</span><span class="jt"></span>{"  " * depth}{prefix}<span class="jp">{opener}'
            f'</span><span class="jfold"> {count:,} {noun} </span><span class="jfold jp">'
            f"{closer}{comma}</span></summary>\n"
        )
        try:
            items = value.items() if is_dict else enumerate(value)
            last = count - 1
            for index, (key, item) in enumerate(items):
                key_html = (
                    f'{self._string(str(key), "jk")}<span class="jp">: </span>' if is_dict else ""
                )
                self.write(item, depth + 1, key_html, "," if index < last else "")
            self._line(depth, f'<span class="jp">{closer}{comma}</span>')
        finally:
            # Close the node even when the budget ran out inside it, so the HTML nests.
            self.parts.append("</details>")


def json_html(
    value: Any,
    *,
    max_lines: int | None = DEFAULT_MAX_LINES,
    max_string: int | None = DEFAULT_MAX_STRING,
) -> JsonView:
    """A JSON value as a line-numbered, highlighted, collapsible block.

    max_lines/max_string of None render everything ("show all").
    """
    writer = _JsonWriter(max_lines, max_string)
    truncated = False
    try:
        writer.write(value)
    except _Budget:
        truncated = True
    size = 0
    if truncated:
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    html = f'<div class="json-view">{"".join(writer.parts)}</div>'
    return JsonView(mark_safe(html), writer.n, truncated, size)  # escaped per token


_TOKEN = re.compile(
    r'\s*(?:(?P<s>"(?:[^"\\]|\\.)*")|(?P<n>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
    r"|(?P<l>true|false|null)|(?P<p>[{}\[\],:]))"
)


def json_text_html(
    text: str,
    *,
    max_lines: int | None = DEFAULT_MAX_LINES,
    max_string: int | None = DEFAULT_MAX_STRING,
    size: int = 0,
    cut: bool = False,
) -> JsonView:
    """The same view as json_html, from JSON text that may be cut anywhere.

    A page that shows the first 2,000 lines of a 1 MB payload only needs its first
    few dozen KB: the database sends that head (selectors.*_head), and this reads
    it token by token, so the megabyte is never decoded. Nodes still collapse; their
    fold hint says "…" since the number of keys lies beyond the head.
    """
    writer = _JsonWriter(max_lines, max_string)
    parts = writer.parts
    stack: list[str] = []
    line: list[str] = []
    expect_key = False
    pos = 0
    truncated = False

    def flush(*, close: bool = False) -> None:
        if line:
            writer._line(len(stack), "".join(line))
            line.clear()
        if close:
            parts.append("</details>")

    try:
        while True:
            match = _TOKEN.match(text, pos)
            if match is None:
                rest = text[pos:].strip()
                if rest:
                    truncated = True
                    if rest.startswith('"'):
                        line.append(_partial_string(rest[1:], max_string))
                break
            pos = match.end()
            kind = match.lastgroup
            token = match.group(kind)
            if cut and kind in ("n", "l") and pos == len(text):
                truncated = True  # a number at the very end of a head may be missing digits
                break
            if kind == "s":
                value = token[1:-1]
                if "\\" in value:  # only escapes need the decoder (it costs per call)
                    with contextlib.suppress(ValueError):  # one JSON refuses: shown as written
                        value = json.loads(token)
                is_key = expect_key and stack and stack[-1] == "{"
                line.append(writer._string(value, "jk" if is_key else "js"))
                expect_key = False
            elif kind == "n":
                line.append(f'<span class="jn">{escape(token)}</span>')
            elif kind == "l":
                line.append(f'<span class="{"jz" if token == "null" else "jb"}">{token}</span>')
            elif token == ":":
                line.append('<span class="jp">: </span>')
            elif token == ",":
                line.append(",")
                flush()
                expect_key = bool(stack) and stack[-1] == "{"
            elif token in "{[":
                closer = "}" if token == "{" else "]"
                following = _TOKEN.match(text, pos)
                if following and following.group("p") == closer:
                    line.append(f'<span class="jp">{token}{closer}</span>')
                    pos = following.end()
                    continue
                if writer.max_lines is not None and writer.n >= writer.max_lines:
                    raise _Budget
                writer.n += 1
                parts.append(
                    f'<details class="jd" open><summary class="jl"><span class="ln" '
                    f'data-n="{writer.n}"></span><span class="jt"></span>{"  " * len(stack)}'
                    f'{"".join(line)}<span class="jp">{token}</span><span class="jfold"> … '
                    f'</span><span class="jfold jp">{closer}</span></summary>\n'
                )
                line.clear()
                stack.append(token)
                expect_key = token == "{"
            else:  # a closer
                flush()
                if stack:
                    stack.pop()
                line.append(f'<span class="jp">{token}</span>')
                # The closing line may still take a comma; its </details> follows it.
                following = _TOKEN.match(text, pos)
                if following and following.group("p") == ",":
                    line.append(",")
                    pos = following.end()
                    expect_key = bool(stack) and stack[-1] == "{"
                flush(close=True)
        truncated = truncated or bool(stack)
        flush()
    except _Budget:
        truncated = True
    opened = sum(1 for p in parts if p.startswith("<details"))
    closed = sum(1 for p in parts if p == "</details>")
    parts.extend("</details>" for _ in range(opened - closed))
    html = f'<div class="json-view">{"".join(parts)}</div>'
    return JsonView(mark_safe(html), writer.n, truncated, size or len(text.encode()))


def _partial_string(body: str, max_string: int | None) -> str:
    """A string cut by the end of the head: what there is of it, marked as cut."""
    body = re.sub(r"\\(u[0-9a-fA-F]{0,3})?$", "", body)
    try:
        value = json.loads(f'"{body}"')
    except ValueError:
        value = body
    if max_string is not None:
        value = value[:max_string]
    shown = escape(json.dumps(value, ensure_ascii=False)[:-1])
    return f'<span class="js">{shown}…</span><span class="jcut"> cut</span>'


def payload_view(
    head: str | None,
    chars: int,
    *,
    max_lines: int | None = DEFAULT_MAX_LINES,
    max_string: int | None = DEFAULT_MAX_STRING,
) -> JsonView | None:
    """A payload's view from the first `chars` characters of its JSON text.

    A head shorter than `chars` is the whole payload: it is decoded and shown with
    counts in its fold hints. A head of exactly `chars` was cut (or just fits: then
    it decodes), and is read as text by json_text_html; its full size is unknown.
    """
    if head is None:
        return None
    # A head as long as the budget is whole only if it happens to end its value.
    if len(head) < chars or head.rstrip()[-1:] in ("}", "]", '"'):
        try:
            return json_html(json.loads(head), max_lines=max_lines, max_string=max_string)
        except ValueError:
            pass
    view = json_text_html(head, max_lines=max_lines, max_string=max_string, cut=True)
    view.truncated = True
    view.size = 0
    return view


def json_pretty(value: Any) -> str:
    """Plain indented JSON text (for copy buttons and downloads)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())


# ---------------------------------------------------------------------------
# Previews for timeline cards

_PREVIEW_KEYS = (
    "thought", "reasoning", "text", "content", "message", "description", "result",
    "response", "answer", "summary", "action", "query", "prompt",
)  # fmt: skip


def preview_text(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """One readable line from a payload: its text when it has some, else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return truncate(" ".join(value[: limit * 2].split()), limit)
    if _is_conversation(value):
        return truncate(" ".join(_conversation_line(value[-1]).split()), limit)
    if isinstance(value, dict):
        for key in _PREVIEW_KEYS:
            item = value.get(key)
            # A long text field is the point of the payload; a short one among
            # others ("action": "click") says less than the compact JSON does.
            if isinstance(item, str) and item.strip() and (len(item) >= 40 or len(value) == 1):
                return truncate(" ".join(item[: limit * 2].split()), limit)
        messages = value.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                text = _message_text(message)
                if text:
                    return truncate(" ".join(text.split()), limit)
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return truncate(text, limit)


def _is_conversation(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
    )


def _call_text(call: Any) -> str:
    if not isinstance(call, dict):
        return ""
    arguments = call.get("arguments")
    if isinstance(arguments, dict):
        shown = ", ".join(
            f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in arguments.items()
        )
    else:
        shown = "" if arguments is None else str(arguments)
    return f"→ {call.get('name') or 'tool'}({shown})"


def _conversation_line(message: dict) -> str:
    """One message of a stored conversation (ingest/content.py) as a line: the model's
    text or the tools it called with their arguments; others say who spoke."""
    text = _message_text(message)
    calls = " ".join(_call_text(c) for c in message.get("tool_calls") or [])
    line = " ".join(part for part in (text, calls) if part)
    role = message.get("role")
    return line if role == "assistant" else f"{role}: {line}"


def _message_text(message: Any) -> str:
    """The text of one chat message, plain or multimodal ([{"type": "text", ...}, ...])."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def preview_from_head(head: str | None, limit: int = PREVIEW_CHARS) -> str:
    """A preview from the first characters of a JSON payload's text.

    The timeline asks the database for only the head of each step's input and
    output (see selectors.step_page) so a page of steps never loads megabytes;
    a head cut mid-value cannot be parsed, so fall back to reading it as text.
    """
    if not head:
        return ""
    try:
        return preview_text(json.loads(head), limit)
    except ValueError:
        pass
    # A cut object or array: the first long text under a usual key, else the last
    # message's content (a chat prompt's point is its last message).
    texts = _HEAD_TEXT.findall(head)
    if texts:
        contents = [text for key, text in texts if key == "content"]
        chosen = contents[-1] if contents else texts[0][1]
        with contextlib.suppress(ValueError):  # an escape cut in half stays as written
            chosen = json.loads(f'"{chosen}"')
        return truncate(" ".join(chosen.split()), limit)
    if head.startswith('"'):
        body = head[1:]
        # Drop a half escape sequence at the cut, then decode what is left.
        body = re.sub(r"\\(u[0-9a-fA-F]{0,3})?$", "", body)
        try:
            return truncate(" ".join(json.loads(f'"{body}"').split()), limit)
        except ValueError:
            return truncate(body, limit)
    return truncate(" ".join(head.split()), limit)


_HEAD_TEXT = re.compile(r'"(' + "|".join(_PREVIEW_KEYS) + r')"\s*:\s*"((?:[^"\\]|\\.){20,})"')


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------
# Read-only JSON form


def json_form_html(value: Any) -> SafeString:
    """The output as a read-only form: objects as fieldsets, arrays as numbered rows.

    Each input carries its JSON Pointer (RFC 6901) in data-pointer so the
    feedback work can address fields the same way when it makes this editable.
    """
    parts: list[str] = []
    _form_node(value, "", "Output", parts, depth=0)
    return mark_safe("".join(parts))  # every value escaped below


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _form_node(value: Any, pointer: str, label: str, parts: list[str], depth: int) -> None:
    label_html = escape(label)
    ptr = escape(pointer or "/")
    if isinstance(value, dict | list):
        kind = "object" if isinstance(value, dict) else "array"
        parts.append(
            f'<fieldset class="jf-group jf-{kind} jf-depth-{min(depth, 6)}" data-pointer="{ptr}">'
            f'<legend>{label_html} <span class="jf-type">{kind}'
            f"{'' if kind == 'object' else f' · {len(value)}'}</span></legend>"
        )
        if not value:
            parts.append('<p class="muted small">empty</p>')
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            child_label = str(key) if isinstance(value, dict) else f"#{key + 1}"
            _form_node(item, f"{pointer}/{_pointer_token(key)}", child_label, parts, depth + 1)
        parts.append("</fieldset>")
        return
    field_id = "jf" + re.sub(r"[^a-zA-Z0-9_-]", "_", pointer or "root")
    common = f'id="{field_id}" data-pointer="{ptr}"'
    if isinstance(value, bool):
        control = f'<input type="checkbox" {common} disabled{" checked" if value else ""}>'
        kind = "boolean"
    elif value is None:
        control = f'<input type="text" {common} value="" placeholder="null" readonly>'
        kind = "null"
    elif isinstance(value, int | float):
        control = f'<input type="number" {common} value="{escape(json.dumps(value))}" readonly>'
        kind = "number"
    else:
        text = str(value)
        kind = "string"
        if len(text) > 80 or "\n" in text:
            rows = min(8, text.count("\n") + 2)
            control = f'<textarea {common} rows="{rows}" readonly>{escape(text)}</textarea>'
        else:
            control = f'<input type="text" {common} value="{escape(text)}" readonly>'
    parts.append(
        f'<div class="jf-field"><label for="{field_id}">{label_html}'
        f' <span class="jf-type">{kind}</span></label>{control}</div>'
    )


# ---------------------------------------------------------------------------
# Code


_formatter = HtmlFormatter(cssclass="hl", linenos="table", wrapcode=True)
_formatter_plain = HtmlFormatter(cssclass="hl", wrapcode=True)


def highlight_code(
    code: str, *, filename: str = "", language: str = "", linenos: bool = True
) -> SafeString:
    """Code highlighted by Pygments into class-based spans (colours live in detail.css)."""
    lexer = None
    if language:
        try:
            lexer = get_lexer_by_name(language)
        except ClassNotFound:
            lexer = None
    if lexer is None and filename:
        try:
            lexer = guess_lexer_for_filename(filename, code[:4000])
        except ClassNotFound:
            lexer = None
    if lexer is None:
        lexer = PythonLexer() if _looks_like_python(code) else TextLexer()
    html = highlight(code, lexer, _formatter if linenos else _formatter_plain)
    return mark_safe(html)  # Pygments escapes the source


def _looks_like_python(code: str) -> bool:
    return bool(re.search(r"^\s*(def |class |import |from \w+ import |async def )", code, re.M))
