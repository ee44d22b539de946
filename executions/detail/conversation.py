"""A model call's messages as a conversation to read: who spoke, what they wrote, the
tools the model called with their arguments laid out, and what the tools answered.

Two kinds of payload reach a model call's card. OTLP model calls are stored in one
shape by ingestion (ingest/content.py): a list of {"role", "content", "tool_calls":
[{"id", "name", "arguments"}], "tool_call_id", "name"}. Steps sent through the JSON
API carry what their caller sent, most often OpenAI or Anthropic messages: a request
({"messages": [...], "system"}), a response ({"choices": [...]}), one message, content
blocks (text, tool_use, tool_result, image), tool calls whose arguments are a JSON
string. Both are read here into messages made of parts, in their order.

Everything in a payload is hostile: text is escaped, or rendered by
rendering.render_markdown (markdown-it with raw HTML off, then nh3) when it is written
as Markdown; arguments and results go through rendering.json_html, which escapes each
token. Nothing here marks a payload's own text safe.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from . import rendering

ROLES = {
    "user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
    "model": "assistant", "system": "system", "developer": "system", "tool": "tool",
    "function": "tool", "ipython": "tool",
}  # fmt: skip
ROLE_LABELS = {"user": "User", "assistant": "Model", "system": "System", "tool": "Tool result"}
CALL_PARTS = {"tool_call", "tool_use", "tool-call", "function_call", "server_tool_use"}
RESULT_PARTS = {"tool_call_response", "tool_result", "tool-result", "function_call_output"}
THINKING_PARTS = {"reasoning", "thinking", "redacted_thinking"}
MEDIA_PARTS = {
    "image", "image_url", "input_image", "file", "input_file", "document", "audio",
    "input_audio", "blob", "uri", "video",
}  # fmt: skip

# How much of a conversation a card shows: the newest prompt messages (what this call
# added to the history), the older ones behind a toggle; a system prompt longer than
# SYSTEM_FOLD behind its own.
RECENT_MESSAGES = 6
SYSTEM_FOLD = 240
# A flat object of at most this many scalar fields reads best as "name: value" rows.
ARGUMENT_ROWS = 12
ARGUMENT_LINES = 60
# Inline Markdown (bold, code, a link) in a one-line reply; block forms are
# rendering.looks_like_markdown's.
INLINE_MARKDOWN = re.compile(r"\*\*\S|`[^`\n]+`|\]\(https?://")


@dataclass
class Part:
    kind: str  # text | call | result | reasoning | media | json
    html: SafeString
    name: str = ""  # a call's or a result's tool
    call_id: str = ""


@dataclass
class Message:
    role: str
    parts: list[Part]
    name: str = ""
    # A long system prompt is folded; its first line is the summary.
    folded: str = ""

    @property
    def label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role.title())


@dataclass
class Conversation:
    """What a model call's card shows, reply first."""

    reply: list[Message] = field(default_factory=list)
    prompt: list[Message] = field(default_factory=list)  # the newest prompt messages
    earlier: list[Message] = field(default_factory=list)  # older ones, behind a toggle
    prompt_count: int = 0
    prompt_cut: bool = False  # the prompt is too long to read from the head sent
    reply_cut: bool = False
    # A side that is no conversation (a model call's output as {"label": ...}): as is.
    prompt_other: SafeString | None = None
    reply_other: SafeString | None = None


# ---------------------------------------------------------------------------
# Reading payloads


def loads_head(head: str | None, chars: int | None) -> tuple[Any, bool]:
    """(value, whole) from the head of a payload's JSON text (selectors.payload_heads).

    whole is False when the head was cut before the value ended: then it cannot be
    read as a conversation here, only shown as text by the raw view. chars None: the
    whole payload was read.
    """
    if head is None:
        return None, True
    if chars is not None and len(head) >= chars and head.rstrip()[-1:] not in ("}", "]", '"'):
        return None, False
    try:
        return json.loads(head), True
    except ValueError:
        return None, False


def messages_of(value: Any, side: str) -> list[dict] | None:
    """A payload as a list of message dicts, when it is one (else None).

    side is "input" or "output": a bare text is the user's on the input side and the
    model's on the output side.
    """
    if isinstance(value, str):
        if not value.strip():
            return None
        return [{"role": "assistant" if side == "output" else "user", "content": value}]
    items: Any = None
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list):  # an OpenAI response
            items = [c.get("message", c) for c in value["choices"] if isinstance(c, dict)]
        elif isinstance(value.get("messages"), list):  # an OpenAI or Anthropic request
            items = list(value["messages"])
            system = value.get("system")
            if isinstance(system, str | list) and system:
                items.insert(0, {"role": "system", "content": system})
        elif "role" in value or isinstance(value.get("message"), dict):
            items = [value]
    elif isinstance(value, list):
        items = value
    if not items:
        return None
    found = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("message"), dict):
            item = item["message"]  # an OpenAI choice, OpenInference's {"message": ...}
        if not isinstance(item, dict):
            return None
        role = item.get("role")
        if not isinstance(role, str) or role.lower() not in ROLES:
            return None
        found.append(item)
    return found


def _decoded(value: Any) -> Any:
    """Arguments and results often arrive as JSON in a string: parsed once."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _call(item: dict) -> tuple[str, Any, str]:
    """(name, arguments, id) of a tool call in any of its forms."""
    if isinstance(item.get("tool_call"), dict):  # OpenInference
        item = item["tool_call"]
    function = item.get("function") if isinstance(item.get("function"), dict) else {}
    name = item.get("name") or item.get("toolName") or function.get("name") or ""
    arguments = None
    for key in ("arguments", "args", "input"):
        if key in item:
            arguments = item[key]
            break
    else:
        arguments = function.get("arguments")
    call_id = item.get("id") or item.get("toolCallId") or item.get("call_id") or ""
    return str(name), _decoded(arguments), str(call_id)


def _result_value(part: dict) -> Any:
    for key in ("response", "result", "content", "output"):
        if key in part:
            value = part[key]
            break
    else:
        return None
    if isinstance(value, dict) and "value" in value and value.get("type") in (
        "text", "json", "error-text", "error-json",
    ):  # fmt: skip
        value = value["value"]  # the Vercel AI SDK's tool output
    if (
        isinstance(value, list)
        and value
        and all(isinstance(b, dict) and b.get("type") == "text" for b in value)
    ):
        value = "\n".join(str(b.get("text", "")) for b in value)  # Anthropic's blocks
    return _decoded(value)


def _text_in(part: dict) -> str | None:
    inner = part.get("message_content", part)  # OpenInference
    if not isinstance(inner, dict):
        return None
    for key in ("text", "content", "thinking", "reasoning"):
        if isinstance(inner.get(key), str):
            return inner[key]
    return None


def _plain(content: Any) -> str:
    if isinstance(content, str):
        return content
    items = content if isinstance(content, list) else [content]
    return "\n".join(t for t in (_text_in(p) if isinstance(p, dict) else p for p in items) if t)


def _media_label(part: dict) -> str:
    kind = str(part.get("type") or "file")
    mime = part.get("mime_type") or part.get("mediaType") or part.get("media_type")
    source = part.get("source")
    if not mime and isinstance(source, dict):
        mime = source.get("media_type")
    return f"{kind} ({mime})" if mime else kind


# ---------------------------------------------------------------------------
# Building the view


def _row(key: Any, value: Any) -> str:
    if isinstance(value, str):
        return f'<div><dt>{escape(str(key))}</dt><dd class="arg-text">{escape(value)}</dd></div>'
    shown = escape(json.dumps(value))
    return f'<div><dt>{escape(str(key))}</dt><dd class="arg-json">{shown}</dd></div>'


class _Builder:
    def __init__(self, max_string: int | None):
        self.max_string = max_string
        self.names: dict[str, str] = {}  # tool call id -> tool name, to label results

    def text(self, text: str) -> SafeString:
        cut = 0
        if self.max_string is not None and len(text) > self.max_string:
            cut = len(text) - self.max_string
            text = text[: self.max_string]
        if rendering.looks_like_markdown(text) or INLINE_MARKDOWN.search(text):
            html = f'<div class="msg-md prose">{rendering.render_markdown(text)}</div>'
        else:
            html = f'<div class="msg-plain">{escape(text)}</div>'
        if cut:
            html += f'<p class="msg-cut">+{cut:,} characters</p>'
        return mark_safe(html)  # escaped, or sanitised Markdown, just above

    def value(self, value: Any) -> SafeString:
        """Arguments or a result: a text as text, a flat object as rows, else JSON."""
        if value is None:
            return mark_safe('<p class="msg-none">(nothing)</p>')
        if isinstance(value, str):
            return self.text(value)
        scalar = (str, int, float, bool, type(None))
        if (
            isinstance(value, dict)
            and 0 < len(value) <= ARGUMENT_ROWS
            and all(isinstance(v, scalar) for v in value.values())
        ):
            limit = self.max_string
            rows = "".join(
                _row(k, rendering.truncate(v, limit) if isinstance(v, str) and limit else v)
                for k, v in value.items()
            )
            return mark_safe(f'<dl class="call-args">{rows}</dl>')  # each key and value escaped
        view = rendering.json_html(value, max_lines=ARGUMENT_LINES, max_string=self.max_string)
        return view.html

    def message(self, raw: dict) -> Message:
        role = ROLES[raw["role"].lower()]
        parts: list[Part] = []
        content = raw.get("parts", raw.get("content"))
        if isinstance(content, dict):
            content = [content]
        if isinstance(content, str):
            if content:
                parts.append(Part("text", self.text(content)))
        elif isinstance(content, list):
            for item in content:
                parts.extend(self.part(item))
        elif content is not None:
            parts.append(Part("json", self.value(content)))
        for call in raw.get("tool_calls") or []:
            if isinstance(call, dict):
                parts.append(self.call(call))
        name = str(raw.get("name") or "")
        if role == "tool":
            # A tool message's text is the tool's answer to one call.
            call_id = str(raw.get("tool_call_id") or raw.get("toolCallId") or "")
            tool = name or self.names.get(call_id, "")
            answer = _plain(content) if isinstance(content, list) else content
            parts = [p for p in parts if p.kind not in ("text", "json")]
            if answer not in (None, ""):
                parts.insert(0, Part("result", self.value(_decoded(answer)), tool, call_id))
        if role == "user" and parts and all(p.kind in ("result", "media") for p in parts):
            role = "tool"  # Anthropic's user turn that only answers tool calls
        message = Message(role=role, parts=parts, name=name)
        if role == "system":
            plain = " ".join(_plain(content).split())
            if len(plain) > SYSTEM_FOLD:
                message.folded = rendering.truncate(plain, 90)
        return message

    def call(self, item: dict) -> Part:
        name, arguments, call_id = _call(item)
        if call_id:
            self.names[call_id] = name
        return Part("call", self.value(arguments), name or "tool", call_id)

    def part(self, item: Any) -> list[Part]:
        if isinstance(item, str):
            return [Part("text", self.text(item))] if item else []
        if not isinstance(item, dict):
            return [Part("json", self.value(item))]
        kind = str(item.get("type") or "")
        if kind in CALL_PARTS:
            return [self.call(item)]
        if kind in RESULT_PARTS:
            call_id = str(
                item.get("tool_use_id") or item.get("toolCallId") or item.get("call_id") or ""
            )
            call_id = call_id or str(item.get("id") or "")
            tool = str(item.get("toolName") or item.get("name") or self.names.get(call_id, ""))
            return [Part("result", self.value(_result_value(item)), tool, call_id)]
        if kind in THINKING_PARTS:
            text = _text_in(item)
            return [Part("reasoning", self.text(text))] if text else []
        if kind in MEDIA_PARTS:
            return [Part("media", mark_safe(escape(_media_label(item))))]
        text = _text_in(item)
        if text is not None:
            return [Part("text", self.text(text))] if text else []
        return [Part("json", self.value(item))]


def conversation_view(
    input_value: Any,
    output_value: Any,
    *,
    input_whole: bool = True,
    output_whole: bool = True,
    max_string: int | None = rendering.DEFAULT_MAX_STRING,
) -> Conversation | None:
    """A model call's prompt and reply to read, or None when neither is a conversation
    (the card then shows the raw JSON alone)."""
    prompt = messages_of(input_value, "input") if input_whole else None
    reply = messages_of(output_value, "output") if output_whole else None
    if prompt is None and reply is None:
        return None
    builder = _Builder(max_string)
    view = Conversation(prompt_cut=not input_whole, reply_cut=not output_whole)
    messages = [builder.message(m) for m in prompt or []]
    view.prompt_count = len(messages)
    keep = RECENT_MESSAGES
    if len(messages) > keep + 1:
        view.earlier, view.prompt = messages[:-keep], messages[-keep:]
    else:
        view.prompt = messages
    view.reply = [builder.message(m) for m in reply or []]
    if prompt is None and input_whole and input_value is not None:
        view.prompt_other = builder.value(input_value)
    if reply is None and output_whole and output_value is not None:
        view.reply_other = builder.value(output_value)
    for message in view.reply:
        if message.role == "user":
            message.role = "assistant"  # a bare text in a reply list is still the model's
    return view


# ---------------------------------------------------------------------------
# One line for a timeline card


def _call_line(item: dict) -> str:
    name, arguments, _id = _call(item)
    if isinstance(arguments, dict):
        shown = ", ".join(
            f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in arguments.items()
        )
    else:
        shown = "" if arguments is None else str(arguments)
    return f"→ {name or 'tool'}({shown})"


def _line(raw: dict) -> str:
    role = ROLES[raw["role"].lower()]
    content = raw.get("parts", raw.get("content"))
    texts, calls = [], []
    for item in [content] if isinstance(content, str | dict) else content or []:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            kind = str(item.get("type") or "")
            if kind in CALL_PARTS:
                calls.append(_call_line(item))
            elif kind in RESULT_PARTS:
                result = _result_value(item)
                texts.append(result if isinstance(result, str) else json.dumps(result))
            elif kind not in THINKING_PARTS:
                texts.append(_text_in(item) or "")
    calls.extend(_call_line(c) for c in raw.get("tool_calls") or [] if isinstance(c, dict))
    line = " ".join(t for t in (" ".join(x for x in texts if x), " ".join(calls)) if t)
    return line if role == "assistant" else f"{role}: {line}"


def preview_line(head: str | None, chars: int | None, side: str, limit: int) -> str | None:
    """A model call's card line: the reply's messages, or the prompt's last one.

    None when the head is not a conversation that can be read (the caller falls back
    to the generic preview)."""
    value, whole = loads_head(head, chars)
    if not whole or value is None or isinstance(value, str):
        return None  # a bare text previews as itself
    found = messages_of(value, side)
    if not found:
        return None
    chosen = found if side == "output" else found[-1:]
    text = " ".join(_line(m) for m in chosen)
    return rendering.truncate(" ".join(text.split()), limit)
