"""The diff pane's rows as HTML: the inline list, the side-by-side table, the history.

Built here rather than in templates for the same reason as the form (formhtml): a
big output has hundreds of differences and corrections, and a template costs tens
of variable lookups per row. The pane's frame (toolbar, headings, messages) stays in
templates/feedback/panes.html. Everything is escaped with html.escape.
"""

from __future__ import annotations

import json
from html import escape

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from .diff import FieldDiff
from .models import FieldCorrection

SHORT = 80


def _when(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    local = timezone.localtime(value)
    return f'<time datetime="{local.isoformat()}">{local.strftime(fmt)}</time>'


def _path(path: str) -> str:
    return escape(path) if path else "(whole output)"


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return escape(text if len(text) <= SHORT else text[: SHORT - 1] + "…")


def _by(d: FieldDiff, sep: str) -> str:
    if d.correction is None:
        return '<span class="muted">—</span>'
    out = escape(d.author) + sep + _when(d.when)
    if d.touches > 1:
        out += f"{sep}{d.touches} corrections"
    return out


def inline(diffs: list[FieldDiff]) -> SafeString:
    out = ['<ol class="fb-inline">']
    w = out.append
    for d in diffs:
        w(f'<li class="fb-{d.kind}" data-path="{escape(d.path)}"><div class="fb-field">')
        w(f'<code class="fb-path">{_path(d.path)}</code>')
        w(f'<span class="fb-kind fb-kind-{d.kind}">{d.kind}</span>')
        if d.moved:
            w(f'<span class="muted small">was {escape(d.original_path)}</span>')
        w('<span class="spacer"></span>')
        if d.correction is not None:
            w(f'<span class="muted small">{_by(d, " · ")}</span>')
        w("</div>")
        before, after = d.before_text, d.after_text
        if before:
            w(
                '<pre class="fb-del"><span class="fb-sign" aria-label="before">&minus;</span>'
                f"{escape(before)}</pre>"
            )
        if after:
            w(
                '<pre class="fb-ins"><span class="fb-sign" aria-label="after">+</span>'
                f"{escape(after)}</pre>"
            )
        if d.comment:
            w(f'<p class="fb-comment small">“{escape(d.comment)}”</p>')
        w("</li>")
    w("</ol>")
    return mark_safe("".join(out))


def split(diffs: list[FieldDiff]) -> SafeString:
    out = [
        '<table class="table fb-split"><thead><tr><th>Field</th><th>Original</th>'
        "<th>Corrected</th><th>By</th></tr></thead><tbody>"
    ]
    w = out.append
    absent = '<span class="muted">absent</span>'
    for d in diffs:
        before, after = d.before_text, d.after_text
        w(f'<tr class="fb-{d.kind}" data-path="{escape(d.path)}">')
        w(f'<td class="fb-path"><code>{_path(d.path)}</code>')
        if d.moved:
            w(f'<br><span class="muted small">was {escape(d.original_path)}</span>')
        w(f'<br><span class="fb-kind fb-kind-{d.kind}">{d.kind}</span></td>')
        w(f'<td class="fb-before">{f"<pre>{escape(before)}</pre>" if before else absent}</td>')
        w(f'<td class="fb-after">{f"<pre>{escape(after)}</pre>" if after else absent}</td>')
        w(f'<td class="fb-by">{_by(d, "<br>")}')
        if d.comment:
            w(f'<br><span class="fb-comment small">“{escape(d.comment)}”</span>')
        w("</td></tr>")
    w("</tbody></table>")
    return mark_safe("".join(out))


def history(
    corrections: list[FieldCorrection],
    *,
    undoable: set[int],
    can_review: bool,
    execution_pk,
    csrf_token: str,
    next_url: str,
    mode: str,
) -> SafeString:
    """Newest first, with an Undo button where the field still holds what was set."""
    out = []
    w = out.append
    hidden = (
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(csrf_token)}">'
        f'<input type="hidden" name="_next" value="{escape(next_url)}">'
        f'<input type="hidden" name="mode" value="{escape(mode)}">'
    )
    # One reverse() for the lot: the URLs differ only in the correction's id.
    template = reverse("feedback:undo", args=[execution_pk, 0])
    head, _, tail = template.rpartition("/0/")
    for c in corrections:
        who = escape(c.author.get_username()) if c.author else "someone"
        w(f'<tr data-correction="{c.pk}"><td class="nowrap">')
        w(_when(c.created_at, "%Y-%m-%d %H:%M:%S"))
        w(f'</td><td>{who}</td><td><code>{_path(c.path)}</code></td><td class="fb-change">')
        if c.op == FieldCorrection.Op.ADD:
            w(
                '<span class="fb-kind fb-kind-added">added</span> '
                f"<code>{_short(c.value_after)}</code>"
            )
        elif c.op == FieldCorrection.Op.REMOVE:
            w(
                '<span class="fb-kind fb-kind-removed">removed</span> '
                f"<code>{_short(c.value_before)}</code>"
            )
        else:
            w(
                f'<code class="fb-old">{_short(c.value_before)}</code> → '
                f'<code class="fb-new">{_short(c.value_after)}</code>'
            )
        w(f'</td><td class="small">{escape(c.comment)}</td>')
        if can_review:
            w("<td>")
            if c.pk in undoable:
                url = f"{head}/{c.pk}/{tail}"
                w(
                    f'<form method="post" action="{url}" hx-post="{url}" '
                    'hx-target="#feedback-diff" hx-swap="outerHTML">'
                    f"{hidden}"
                    '<button type="submit" class="btn btn-small" '
                    'title="Make a new correction back to the earlier value">Undo</button></form>'
                )
            w("</td>")
        w("</tr>")
    return mark_safe("".join(out))
