"""Feedback panes as tags, so other pages (the execution detail page, the agent page)
embed them with one line and no change to their views."""

import json

from django import template
from django.template.loader import render_to_string

register = template.Library()


@register.filter
def json_short(value, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.filter
def percent(value) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "—"


def _render(context, partial: str, extra: dict) -> str:
    request = context["request"]
    return render_to_string(f"feedback/panes.html#{partial}", extra, request=request)


@register.simple_tag(takes_context=True)
def feedback_form(context, execution):
    """The editable JSON form (read-only for viewers and operators)."""
    from feedback.views import form_context

    return _render(context, "form", form_context(context["request"], execution))


@register.simple_tag(takes_context=True)
def feedback_diff(context, execution, mode="inline"):
    from feedback.views import diff_context

    mode = mode if mode in {"inline", "split"} else "inline"
    return _render(context, "diff", diff_context(context["request"], execution, mode=mode))


@register.simple_tag(takes_context=True)
def feedback_notes(context, execution):
    from feedback.views import notes_context

    return _render(context, "notes", notes_context(context["request"], execution))


@register.simple_tag(takes_context=True)
def feedback_note_button(context, execution):
    """The header's Note button; nothing for those who may not leave notes."""
    from feedback.views import _can_review

    request = context["request"]
    if not _can_review(request):
        return ""
    return _render(
        context,
        "note_form",
        {"execution": execution, "can_review": True, "note_errors": {}, "note_values": {}},
    )


@register.simple_tag(takes_context=True)
def feedback_accuracy(context, agent):
    from feedback.selectors import field_accuracy

    request = context["request"]
    accuracy = field_accuracy(workspace=request.workspace, agent=agent)
    return render_to_string(
        "feedback/accuracy.html", {"agent": agent, "accuracy": accuracy}, request=request
    )
