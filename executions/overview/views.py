"""The overview page: one URL; an htmx request gets one region (?region=...) or all
of them without the page around; a CSV per chart. Reads only through selectors."""

import csv

from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from agents.decorators import with_workspace
from executions.models import Source

from . import present, selectors
from .query import RANGES, parse

REGIONS = ("timeline", "ranked", "errors", "calls", "spikes")


def _ranked(query) -> dict:
    agents, versions = selectors.ranked_lists(query)
    return {
        "lists": [
            (present.ranked_chart(query, agents, False), agents),
            (present.ranked_chart(query, versions, True), versions),
        ]
    }


def _context(query, regions) -> dict:
    context = {"q": query, "regions": regions}
    if "timeline" in regions:
        tl = selectors.timeline(query)
        context.update(
            timeline=tl,
            charts=present.timeline_charts(query, tl),
            summary=present.summary(query, tl),
        )
    if "ranked" in regions:
        context.update(_ranked(query))
    if "errors" in regions:
        context["errors"] = present.errors_list(query, selectors.error_groups(query))
    if "calls" in regions:
        context["calls"] = present.calls_lists(query, selectors.call_stats(query))
    if "spikes" in regions:
        context.update(
            spikes=present.spikes_chart(selectors.spikes(query)),
            approvals=present.approvals_chart(query, selectors.approvals_waiting(query)),
        )
    return context


@require_GET
@with_workspace
def overview(request):
    query = parse(request.GET, workspace=request.workspace)
    region = request.GET.get("region", "")
    if region and region not in REGIONS:
        query.errors["region"] = f"region: choose one of {', '.join(REGIONS)}."
        region = ""
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    context = _context(query, [region] if region and partial else list(REGIONS))
    context.update(ranges=list(RANGES), sources=Source.choices)
    if partial and region:
        template = f"executions/overview/overview.html#{region}"
    elif partial:
        template = "executions/overview/overview.html#body"
    else:
        template = "executions/overview/overview.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _chart(query, name: str):
    if name in ("runs", "errors", "latency", "tokens", "cost", "credits"):
        tl = selectors.timeline(query)
        return {c.id: c for c in present.timeline_charts(query, tl)}[name]
    if name in ("agents", "versions"):
        agents, versions = selectors.ranked_lists(query)
        by_version = name == "versions"
        return present.ranked_chart(query, versions if by_version else agents, by_version)
    if name == "error-groups":
        return present.errors_list(query, selectors.error_groups(query))
    if name in ("slowest-calls", "failing-calls", "models"):
        charts = present.calls_lists(query, selectors.call_stats(query))
        return {c.id: c for c in charts}[name]
    if name == "spikes":
        return present.spikes_chart(selectors.spikes(query))
    if name == "approvals":
        return present.approvals_chart(query, selectors.approvals_waiting(query))
    return None


CHARTS = (
    "runs",
    "errors",
    "latency",
    "tokens",
    "cost",
    "credits",
    "agents",
    "versions",
    "error-groups",
    "slowest-calls",
    "failing-calls",
    "models",
    "spikes",
    "approvals",
)


@require_GET
@with_workspace
def overview_csv(request):
    query = parse(request.GET, workspace=request.workspace)
    name = request.GET.get("chart", "")
    if name not in CHARTS:
        return HttpResponseBadRequest(
            f"chart: choose one of {', '.join(CHARTS)}.", content_type="text/plain; charset=utf-8"
        )
    if query.errors:
        return HttpResponseBadRequest(
            " ".join(query.errors.values()), content_type="text/plain; charset=utf-8"
        )
    chart = _chart(query, name)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="overview-{name}.csv"'
    writer = csv.writer(response)
    writer.writerows(chart.csv_rows())
    return response
