from django.shortcuts import render
from django.views.decorators.http import require_GET

from agents.decorators import with_workspace

from .. import selectors


@require_GET
@with_workspace
def execution_detail(request, pk):
    execution = selectors.execution_get(workspace=request.workspace, pk=pk)
    steps = execution.steps.order_by("sequence")[:200]
    return render(
        request, "executions/execution_detail.html", {"execution": execution, "steps": steps}
    )
