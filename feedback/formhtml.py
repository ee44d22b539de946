"""The JSON form's HTML (see jsonform for the tree it renders and the names it uses).

Built here rather than in templates: a 1 MB output has thousands of inputs, and a
template include per field would blow the page's time budget. Every value, label
and name goes through html.escape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING

from django.utils.safestring import SafeString, mark_safe

from .jsonform import ABSENT, NEW_KEY, TEMPLATE_PTR, Node, canonical, find, value_hash
from .pointer import MISSING

if TYPE_CHECKING:
    from .services import StaleBase


@dataclass
class Annotations:
    """What to show beside fields: errors, corrections made, conflicts."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    corrected: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)


class _Renderer:
    def __init__(self, notes: Annotations, editable: bool):
        self.notes = notes
        self.editable = editable
        self.ids = 0
        # shape -> (id, html, built from a list that had rows)
        self.templates: dict[str, tuple[str, str, bool]] = {}
        self.shape_base = ""  # inside a template: the shape of the list it adds rows to
        self.out: list[str] = []

    def next_id(self) -> str:
        self.ids += 1
        return f"jf-{self.ids}"

    def render(self, node: Node) -> None:
        if node.type == "leaf":
            self.leaf(node)
        elif node.type == "object":
            self.object(node)
        else:
            self.array(node)

    def _messages(self, ptr: str) -> None:
        w = self.out.append
        for msg in self.notes.errors.get(ptr, ()):
            w(f'<p class="field-error" role="alert">{escape(msg)}</p>')
        if ptr in self.notes.conflicts:
            w(f'<p class="jf-conflict" role="alert">{escape(self.notes.conflicts[ptr])}</p>')

    def leaf(self, node: Node) -> None:
        w = self.out.append
        ptr = node.ptr
        fid = self.next_id()
        classes = "jf-leaf"
        if ptr in self.notes.errors:
            classes += " has-error"
        if ptr in self.notes.conflicts:
            classes += " jf-has-conflict"
        if node.base == ABSENT:
            classes += " jf-absent"
        w(f'<div class="{classes}" data-ptr="{escape(ptr)}">')
        w(f'<label for="{fid}" class="jf-label">{escape(node.label)}')
        if node.optional:
            w(' <span class="jf-tag" title="Optional: left empty, it stays out">optional</span>')
        elif node.base == ABSENT:
            w(
                ' <span class="jf-tag" title="Declared by the schema, missing from the output">'
                "missing</span>"
            )
        w("</label>")
        w('<div class="jf-input">')
        name = escape(f"v|{node.kind}|{node.base}|{node.base_text}|{ptr}")
        self.input(node, fid, name)
        corrected = self.notes.corrected.get(ptr)
        if corrected:
            w(f'<span class="jf-tag jf-tag-corrected" title="{escape(corrected)}">corrected</span>')
        if node.warning:
            w(f'<p class="jf-warning">{escape(node.warning)}</p>')
        self._messages(ptr)
        w("</div></div>")

    def input(self, node: Node, fid: str, name: str) -> None:
        w = self.out.append
        kind = node.kind
        text = escape(node.text)
        ro = "" if self.editable else " readonly"
        common = f'id="{fid}" name="{name}" data-kind="{kind}"'
        if kind == "text":
            rows = min(12, max(2, node.text.count("\n") + 1 + len(node.text) // 90))
            # The leading newline is eaten by the HTML parser, so a value's own survives.
            w(f'<textarea {common} rows="{rows}"{ro}>\n{text}</textarea>')
        elif kind in {"boolean", "enum"}:
            dis = "" if self.editable else " disabled"
            w(f"<select {common}{dis}>")
            if kind == "boolean":
                choices = [("true", "true"), ("false", "false")]
            else:
                choices = [
                    (canonical(c), c if isinstance(c, str) else canonical(c))
                    for c in (node.facts.enum if node.facts and node.facts.enum else ())
                ]
            values = {c[0] for c in choices}
            if node.text not in values:
                blank_label = "—" if node.text == "" else f"{node.text} (not allowed)"
                choices.insert(0, (node.text, blank_label))
            for value, label in choices:
                sel = " selected" if value == node.text else ""
                w(f'<option value="{escape(value)}"{sel}>{escape(str(label))}</option>')
            w("</select>")
        elif kind in {"number", "integer"}:
            step = "1" if kind == "integer" else "any"
            mode = "numeric" if kind == "integer" else "decimal"
            w(f'<input type="number" step="{step}" inputmode="{mode}" {common} value="{text}"{ro}>')
        elif kind == "date":
            w(f'<input type="date" {common} value="{text}"{ro}>')
        elif kind == "datetime":
            w(
                f'<input type="text" {common} value="{text}" placeholder="2024-03-01T10:00:00Z"'
                f' pattern="\\d{{4}}-\\d{{2}}-\\d{{2}}[T ]\\d{{2}}:\\d{{2}}.*"{ro}>'
            )
        elif kind == "null":
            w(f'<input type="text" {common} value="{text}" placeholder="null"{ro}>')
        else:
            w(f'<input type="text" {common} value="{text}"{ro}>')

    def object(self, node: Node) -> None:
        w = self.out.append
        ptr = node.ptr
        marker = f'<input type="hidden" name="{escape(f"c|object|||{ptr}")}" value="">'
        is_row = bool(node.key)
        if ptr == "" or is_row:
            w(f'<div class="jf-obj" data-ptr="{escape(ptr)}">{marker}')
            self._messages(ptr)
        else:
            cls = "jf-obj has-error" if ptr in self.notes.errors else "jf-obj"
            w(
                f'<fieldset class="{cls}" data-ptr="{escape(ptr)}"><legend>{escape(node.label)}'
                f"</legend>{marker}"
            )
            self._messages(ptr)
        if not node.children:
            w('<p class="muted small">Empty object.</p>')
        for c in node.children:
            self.render(c)
        w("</div>" if ptr == "" or is_row else "</fieldset>")

    def array(self, node: Node) -> None:
        w = self.out.append
        ptr = node.ptr
        cls = "jf-arr has-error" if ptr in self.notes.errors else "jf-arr"
        live = sum(1 for c in node.children if not c.deleted)
        count = f"{live} item" + ("" if live == 1 else "s")
        tag = "div" if ptr == "" or node.key else "fieldset"
        # The opening tag names the row template, which is chosen after the rows are
        # rendered: a template taken from real rows beats one from an empty list.
        opening = len(self.out)
        w("")
        if tag == "fieldset":
            w(f'<legend>{escape(node.label)} <span class="jf-count">{count}</span></legend>')
        w(
            f'<input type="hidden" name="{escape(f"c|array|{node.length}|{node.base}|{ptr}")}"'
            ' value="">'
        )
        self._messages(ptr)
        w('<ol class="jf-rows">')
        rname = escape(f"r|{ptr}")
        dname = escape(f"d|{ptr}")
        for c in node.children:
            self.row(c, rname, dname)
        w("</ol>")
        tpl_id = ""
        if self.editable and node.template is not None:
            tpl_id = self.template_for(node)
            w(
                '<button type="button" class="btn btn-small jf-add" data-jf="add">+ Add item'
                "</button>"
            )
        if not node.children:
            w('<p class="muted small jf-empty">No items.</p>')
        w(f"</{tag}>")
        self.out[opening] = f'<{tag} class="{cls}" data-ptr="{escape(ptr)}" data-tpl="{tpl_id}">'

    def row(self, c: Node, rname: str, dname: str) -> None:
        w = self.out.append
        key = escape(c.key)
        cls = "jf-row jf-row-removed" if c.deleted else "jf-row"
        if c.key == NEW_KEY or not c.key.isdigit():
            cls += " jf-row-new"
        w(f'<li class="{cls}" data-key="{key}">')
        w(f'<input type="hidden" name="{rname}" value="{key}">')
        if self.editable:
            checked = " checked" if c.deleted else ""
            w(
                '<div class="jf-row-tools">'
                '<button type="button" class="btn-icon" data-jf="up" title="Move up" '
                'aria-label="Move up">↑</button>'
                '<button type="button" class="btn-icon" data-jf="down" title="Move down" '
                'aria-label="Move down">↓</button>'
                f'<label class="jf-remove"><input type="checkbox" name="{dname}" value="{key}"'
                f"{checked}> remove</label></div>"
            )
        self.render(c)
        w("</li>")

    def template_for(self, node: Node) -> str:
        # One template per shape of list ("/items/*/lines"), however many lists share it.
        ptr = node.ptr.replace(TEMPLATE_PTR, self.shape_base).replace(NEW_KEY, "*")
        shape = re.sub(r"/(\d+|n\d+)(?=/|$)", "/*", ptr)
        known = self.templates.get(shape)
        rich = bool(node.children)
        if known is None or (rich and not known[2]):
            tpl_id = known[0] if known else f"jf-tpl-{len(self.templates) + 1}"
            self.templates[shape] = (tpl_id, "", rich)
            inner = _Renderer(Annotations(), editable=True)
            inner.templates = self.templates
            inner.shape_base = shape
            inner.row(node.template, escape(f"r|{TEMPLATE_PTR}"), escape(f"d|{TEMPLATE_PTR}"))
            html = "".join(inner.out)
            html = html.replace('id="jf-', 'id="jft-').replace('for="jf-', 'for="jft-')
            self.templates[shape] = (tpl_id, html, rich)
        return self.templates[shape][0]


def render(root: Node, *, notes: Annotations | None = None, editable: bool = True) -> SafeString:
    """The form's fields as HTML; every value and name is escaped here."""
    return render_counted(root, notes=notes, editable=editable)[0]


def render_counted(
    root: Node, *, notes: Annotations | None = None, editable: bool = True
) -> tuple[SafeString, int]:
    """The HTML and how many fields a browser will submit with it (templates aside)."""
    r = _Renderer(notes or Annotations(), editable)
    r.out.append('<div class="jf-root" data-ptr="">')
    r.render(root)
    r.out.append("</div>")
    fields = sum(part.count(' name="') for part in r.out)
    for tpl_id, html, _ in r.templates.values():
        r.out.append(f'<template id="{tpl_id}">{html}</template>')
    return mark_safe("".join(r.out)), fields


def conflict_notes(root: Node, exc: StaleBase) -> Annotations:
    """The form's notes for a save refused as stale (services.StaleBase), shared by the
    run's Form tab and the review page."""
    notes = Annotations()
    for conflict in exc.conflicts:
        node = find(root, conflict.field) if conflict.field else None
        if node is not None and node.type == "leaf" and conflict.current is not MISSING:
            # Rebase the field on the newer value: the reviewer's text stays, and saving
            # again is a deliberate choice to replace what the other reviewer set.
            node.base = value_hash(conflict.current)
            notes.conflicts[conflict.field] = (
                f"{conflict.message} Your value is kept here: save again to replace theirs."
            )
        else:
            notes.conflicts[conflict.field or ""] = (
                f"{conflict.message} Reload the form to edit it again."
            )
    return notes
