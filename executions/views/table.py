from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from agents.decorators import with_workspace

from .. import selectors


@require_GET
@with_workspace
def execution_list(request):
    executions = selectors.execution_list(workspace=request.workspace)
    page = Paginator(executions, 20).get_page(request.GET.get("page"))
    return render(request, "executions/execution_list.html", {"page": page})


@require_GET
@with_workspace
def batch_detail(request, pk):
    batch = selectors.batch_get(workspace=request.workspace, pk=pk)
    executions = selectors.execution_list(workspace=request.workspace).filter(batch=batch)
    return render(
        request, "executions/batch_detail.html", {"batch": batch, "executions": executions[:500]}
    )
