"""`{% run_form agent %}`: the Run form on an agent's page, for those who may run it."""

import json

from django import template

from executions.control.forms import RunForm

register = template.Library()


@register.inclusion_tag("executions/control/agent_run.html", takes_context=True)
def run_form(context, agent):
    request = context["request"]
    membership = getattr(request, "membership", None)
    can_operate = bool(membership and membership.can_operate)
    form = RunForm(workspace=request.workspace, agent=agent) if can_operate else None
    return {"request": request, "agent": agent, "form": form, "can_operate": can_operate}


@register.filter
def as_text(value) -> str:
    """A JSON value as a reviewer reads it: text as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
