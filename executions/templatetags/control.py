"""`{% run_form agent %}`: the Run form on an agent's page, for those who may run it."""

from django import template

from ..control_forms import RunForm

register = template.Library()


@register.inclusion_tag("executions/control/agent_run.html", takes_context=True)
def run_form(context, agent):
    request = context["request"]
    membership = getattr(request, "membership", None)
    can_operate = bool(membership and membership.can_operate)
    form = RunForm(workspace=request.workspace, agent=agent) if can_operate else None
    return {"request": request, "agent": agent, "form": form, "can_operate": can_operate}
