"""The table's "Tag selected…": GET shows the ticked runs and asks for the tags, the
confirmation POSTs (add or remove). Works without JavaScript."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from agents.decorators import with_workspace
from executions.models import Execution

from . import services

MAX_SELECTED = 500


@require_http_methods(["GET", "POST"])
@with_workspace
def tags_bulk(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    back = data.get("next") or request.headers.get("Referer") or ""
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
        back = ""
    back = back or reverse("executions:list")
    errors: dict[str, str] = {}
    ids, bad = [], []
    for raw in data.getlist("ids")[:MAX_SELECTED]:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            bad.append(raw)
    if bad:
        errors["ids"] = f"Not execution ids: {', '.join(map(repr, bad[:3]))}."
    elif not ids:
        errors["ids"] = "Tick the runs to tag first."
    runs = Execution.objects.filter(workspace=request.workspace, pk__in=ids)
    if request.method == "POST" and not errors:
        try:
            services.require_tagger(request.membership)
            names = data.get("tags", "").replace(",", " ").split()
            if data.get("action") == "remove":
                n = services.tags_remove(workspace=request.workspace, executions=runs, names=names)
                messages.success(request, f"Removed {n} tag{'s' if n != 1 else ''}.")
            else:
                n = services.tags_add(
                    workspace=request.workspace, executions=runs, names=names, user=request.user
                )
                messages.success(request, f"Added {n} tag{'s' if n != 1 else ''}.")
            return redirect(back)
        except PermissionDenied as exc:
            return render(request, "feedback/forbidden.html", {"message": str(exc)}, status=403)
        except services.TagError as exc:
            errors[exc.field] = exc.message
    context = {
        "runs": list(runs.only("id", "agent_name", "version_name", "agent_id")[:MAX_SELECTED]),
        "errors": errors,
        "next": back,
        "tags": data.get("tags", ""),
    }
    return render(request, "executions/tags/bulk.html", context, status=400 if errors else 200)
