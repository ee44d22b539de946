"""The executions table, its live updates, exports, saved views and batches.

One URL, one view: a normal request gets the whole page, an htmx request the
#results region only (plus out-of-band updates for the bits of the filter form
that depend on the results). Every state is in the query string.
"""

import hashlib
import uuid

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from agents.decorators import with_workspace
from agents.selectors import NoWorkspace, membership_for_request
from executions import notify, timestamps

from . import export, selectors
from .saved_views import saved_view_delete, saved_view_save
from .state import checkbox_options, control_html
from .tables import ExecutionTable, execution_table, rows_html, segments

# The parameters that make up the table's state, in the order URLs spell them.
FILTER_PARAMS = [
    "q",
    "agent",
    "version",
    "status",
    "start",
    "end",
    "after",
    "before",
    "error_group",
    "step",
    "step_model",
    "batch",
    "schedule",
    "source",
    "meta",
    "min_duration",
    "min_cost",
    "min_credits",
    "feedback",
    "budget",
    "tag",
    "flat",
]
STATE_PARAMS = [*FILTER_PARAMS, "sort", "per_page", "page", "cursor"]
# A position in the table, not a choice of rows: dropped wherever the page is.
POSITION = ("page", "cursor")
LIVE_POLL = "every 3s"
# Under ASGI on PostgreSQL the live request is a long poll: the server holds it until
# the workspace changes (LIVE_WAIT_SECONDS at most), and the page asks again 2 s after
# each answer, so a busy workspace costs one look per table every 2 s and an idle one
# a look every LIVE_WAIT_SECONDS.
LIVE_WAIT = "every 2s"
LIVE_WAIT_SECONDS = 25
# Set by static/js/app.js: this browser runs the page's JavaScript.
JS_COOKIE = "js"
MAX_LIVE_IDS = 100
MAX_EXPORT_IDS = 1000


def canonical_query(params, *, keep=STATE_PARAMS, drop=()) -> str:
    """The table's parameters without blanks, in a fixed order: the URL to push,
    share and save."""
    out = QueryDict(mutable=True)
    for name in keep:
        if name in drop:
            continue
        values = [v for v in params.getlist(name) if v.strip()]
        if values:
            out.setlist(name, values)
    return out.urlencode()


def _resolve_view(request):
    """The GET parameters with a saved view (?view=<id>) expanded into them.

    Parameters given alongside the view win, so a saved view can be paged and
    re-sorted without losing it. Returns (params, active view, notice).
    """
    params = request.GET
    raw = params.get("view")
    if not raw:
        return params, None, ""
    try:
        view = selectors.saved_view_get(workspace=request.workspace, pk=int(raw))
    except (ValueError, Http404):
        return params, None, f"There is no saved view “{raw[:40]}” in this workspace."
    merged = QueryDict(view.query, mutable=True)
    for name in STATE_PARAMS:
        if name in params:
            merged.setlist(name, params.getlist(name))
    return merged, view, ""


def _table_context(request, params, page, *, active_view=None, view_notice=""):
    table = execution_table(page.entries)
    query = canonical_query(params)
    filters_query = canonical_query(params, drop=(*POSITION, "per_page"))
    live_query = QueryDict(canonical_query(params, drop=POSITION), mutable=True)
    live_query["since"] = page.since.isoformat()
    if page.active_ids:
        live_query.setlist("ids", page.active_ids[:MAX_LIVE_IDS])
    if page.active_batch_ids:
        live_query.setlist("bids", page.active_batch_ids)
    form = page.filterset.form
    table_query = QueryDict(query, mutable=True)
    if active_view is not None:
        table_query["view"] = str(active_view.pk)
    total_query = table_query.copy()
    total_query["part"] = "total"
    return {
        "total_query": total_query.urlencode(),
        # Names this page's total and pager, so a count that arrives after the table
        # has moved on to other filters finds nothing to replace.
        "late_key": hashlib.sha1(table_query.urlencode().encode()).hexdigest()[:12],
        "table_query": table_query,
        "flat": params.get("flat") == "1",
        "page": page,
        "table": table,
        "headers": table.headers(page.sort),
        "segments": segments(table),
        "column_count": len(table.columns),
        "form": form,
        "query": query,
        "filters_query": filters_query,
        "save_query": canonical_query(params, drop=POSITION),
        "first_page_query": canonical_query(params, drop=POSITION),
        "live_query": live_query.urlencode(),
        "live_poll": _live_trigger(request),
        "active_view": active_view,
        "view_notice": view_notice,
        "page_sizes": (20, 50, 100),
        "filter_fields": [form[name] for name in FILTER_PARAMS if name in form.fields],
        "has_filters": bool(page.filterset.applied()),
    }


@require_GET
@with_workspace
def execution_list(request):
    params, active_view, view_notice = _resolve_view(request)
    if not request.htmx and "view" not in request.GET:
        # A form submitted without JavaScript sends every field, blank or not:
        # answer with the tidy URL so that what people copy and share is short.
        blanks = any(not v.strip() for name in STATE_PARAMS for v in request.GET.getlist(name))
        if blanks:
            tidy = canonical_query(request.GET)
            return redirect(f"{request.path}?{tidy}" if tidy else request.path)
    counting = request.GET.get("part") == "total"
    # The rows may come before an expensive total when the browser runs htmx, which
    # then asks for the total (part=total) and swaps it in. Without JavaScript (no
    # htmx request, no js cookie from app.js) the total is counted inline.
    late = not counting and (bool(request.htmx) or request.COOKIES.get(JS_COOKIE) == "1")
    page = selectors.execution_table_page(
        workspace=request.workspace, params=params, late_total=late
    )
    context = _table_context(
        request, params, page, active_view=active_view, view_notice=view_notice
    )
    if counting and request.htmx:
        # Only the total and the pager, swapped into the page that asked for them.
        response = render(request, "executions/table/late_total.html", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    # A history restore needs the whole page: htmx swaps it in as the body.
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    if partial:
        context["oob"] = True
        response = render(request, "executions/execution_list.html#results", context)
        # The URL as asked, without the blanks a form sends: a saved view stays a view.
        pushed = canonical_query(request.GET)
        if active_view is not None:
            pushed = f"view={active_view.pk}" + (f"&{pushed}" if pushed else "")
        url = reverse("executions:list")
        response["HX-Push-Url"] = f"{url}?{pushed}" if pushed else url
    else:
        context["saved_views"] = list(selectors.saved_view_list(workspace=request.workspace))
        form = page.filterset.form
        filterset = page.filterset
        context["controls"] = {
            name: control_html(
                form[name], filterset.choices_for(name), filterset.hidden_choices(name)
            )
            for name in FILTER_PARAMS
            if name in form.fields and name != "status"
        }
        context["status_options"] = checkbox_options(form["status"])
        context["status_summary"] = ", ".join(
            label for _, label, ticked in context["status_options"] if ticked
        )
        response = render(request, "executions/execution_list.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _uuid_list(values, limit):
    out = []
    for value in values[:limit]:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out


def _since(text: str):
    # A hand-edited poll URL: an unreadable or impossible time just stops the polling.
    try:
        parsed = parse_datetime(text)
        return timestamps.checked(parsed) if parsed else None
    except ValueError:
        return None


def _live_trigger(request) -> str:
    if isinstance(request, ASGIRequest) and notify.enabled():
        return LIVE_WAIT
    return LIVE_POLL


async def _wait_for_workspace(request) -> str:
    """Hold the request while nothing changed in the workspace since the page's last
    answer (its `live` token says which); the token for the next one. The wait holds no
    database connection and no thread, and runs no query: the process's listener
    (executions/notify.py) wakes it."""
    try:
        membership = await sync_to_async(membership_for_request)(request)
    except NoWorkspace:
        return ""
    hub = notify.hub()
    key = f"ws:{membership.workspace_id}"
    subscription = hub.subscribe(key)
    try:
        await notify.free_request_thread()
        # The process's first live request waits (briefly) for its listener to connect.
        if await hub.ready(2.0) and request.GET.get("live") == hub.token(key):
            await subscription.wait(LIVE_WAIT_SECONDS)
        # Taken before the answer reads anything: a change after this moves it on, so
        # the next request answers at once instead of sleeping through it.
        return hub.token(key)
    finally:
        subscription.close()


@require_GET
async def execution_live(request):
    """The table's live region: an htmx long poll under ASGI on PostgreSQL (answered
    when the workspace changes), a plain poll elsewhere (SQLite, WSGI)."""
    token = ""
    if request.htmx and isinstance(request, ASGIRequest) and notify.enabled():
        token = await _wait_for_workspace(request)
    return await sync_to_async(_execution_live)(request, token)


@with_workspace
def _execution_live(request, token: str):
    """What changed since the page was drawn: running rows re-rendered out of band,
    batch groups' progress, and how many new executions match the filters."""
    if not request.htmx:
        # A poll is no page of its own.
        return redirect(f"{reverse('executions:list')}?{canonical_query(request.GET)}")
    since = _since(request.GET.get("since", ""))
    if since is None:
        return HttpResponseStopPolling()
    params = request.GET
    rows = selectors.execution_table_rows(
        workspace=request.workspace, ids=_uuid_list(params.getlist("ids"), MAX_LIVE_IDS)
    )
    batches = selectors.batch_entries(
        workspace=request.workspace, batch_ids=_uuid_list(params.getlist("bids"), 50)
    )
    new_count = selectors.execution_new_count(
        workspace=request.workspace, params=params, since=since
    )
    still_live = QueryDict(canonical_query(params, drop=POSITION), mutable=True)
    still_live["since"] = since.isoformat()
    still_live.setlist("ids", [str(r.pk) for r in rows if not r.is_terminal])
    still_live.setlist("bids", [str(pk) for pk, b in batches.items() if b.is_active])
    if token:
        still_live["live"] = token
    table = execution_table(rows)
    context = {
        "rows": rows_html(table, swap_oob=True),
        "batches": list(batches.values()),
        "new_count": new_count,
        "live_query": still_live.urlencode(),
        "live_poll": _live_trigger(request),
        "first_page_query": canonical_query(params, keep=STATE_PARAMS, drop=POSITION),
        "filters_query": canonical_query(params, keep=FILTER_PARAMS),
        "column_count": len(table.columns),
    }
    response = render(request, "executions/table/live.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@with_workspace
def execution_export(request, fmt):
    """The filtered rows (or the selected ids) as CSV or JSON, streamed."""
    params, _, _ = _resolve_view(request)
    ids = None
    if "ids" in request.GET:
        raw = request.GET.getlist("ids")
        if len(raw) > MAX_EXPORT_IDS:
            return HttpResponseBadRequest(
                f"Select at most {MAX_EXPORT_IDS} executions, or export the filtered table."
            )
        ids = _uuid_list(raw, MAX_EXPORT_IDS)
        if len(ids) != len(raw):
            return HttpResponseBadRequest("Some selected ids are not execution ids.")
    else:
        # An export with a filter it cannot apply would silently hold more rows than asked.
        problems = selectors.execution_filter_errors(workspace=request.workspace, params=params)
        if problems:
            listed = "; ".join(f"{field}: {message}" for field, message in problems.items())
            return HttpResponseBadRequest(f"The export's filters are not valid: {listed}")
    queryset = selectors.execution_export_rows(workspace=request.workspace, params=params, ids=ids)
    return export.export_response(queryset, fmt)


def _back_to_table(request, fallback_query=""):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    url = reverse("executions:list")
    return redirect(f"{url}?{fallback_query}" if fallback_query else url)


def _views_menu(request, *, active_view=None, save_query="", error="", name="", open_=True):
    context = {
        "saved_views": list(selectors.saved_view_list(workspace=request.workspace)),
        "active_view": active_view,
        "save_query": save_query,
        "save_error": error,
        "save_name": name,
        "menu_open": open_,
    }
    response = render(request, "executions/table/views_menu.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
@with_workspace
def saved_view_create(request):
    name = request.POST.get("name", "")
    query = canonical_query(QueryDict(request.POST.get("query", "")), drop=POSITION)
    try:
        view = saved_view_save(
            workspace=request.workspace, owner=request.user, name=name, query=query
        )
    except ValidationError as exc:
        message = " ".join(exc.message_dict.get("name", exc.messages))
        if request.htmx:
            return _views_menu(request, save_query=query, error=message, name=name)
        messages.error(request, message)
        return _back_to_table(request, query)
    if request.htmx:
        response = _views_menu(request, active_view=view, save_query=query, open_=False)
        return response
    messages.success(request, f"Saved the view “{view.name}”.")
    return redirect(f"{reverse('executions:list')}?view={view.pk}")


@require_POST
@with_workspace
def saved_view_remove(request, pk):
    view = selectors.saved_view_get(workspace=request.workspace, pk=pk)
    try:
        saved_view_delete(view=view, membership=request.membership)
    except PermissionDenied as exc:
        if request.htmx:
            return _views_menu(request, error=str(exc))
        messages.error(request, str(exc))
        return _back_to_table(request)
    if request.htmx:
        return _views_menu(request)
    messages.success(request, f"Deleted the view “{view.name}”.")
    return _back_to_table(request)


@require_GET
@with_workspace
def batch_rows(request, pk):
    """A batch group's <tbody>, expanded to its executions or collapsed again."""
    batch = selectors.batch_get(workspace=request.workspace, pk=pk)
    params = request.GET
    if not request.htmx:
        return redirect(f"{reverse('executions:list')}?batch={batch.pk}")
    expanded = params.get("expand") == "1"
    entry = selectors.batch_entry(workspace=request.workspace, batch=batch, params=params)
    rows = []
    if expanded:
        executions = selectors.batch_executions(
            workspace=request.workspace, batch=batch, params=params
        )
        rows = rows_html(execution_table(executions, inside_batch=True), child=True)
    context = {
        "entry": entry,
        "expanded": expanded,
        "rows": rows,
        "more": max(0, entry.matching - len(rows)) if expanded else 0,
        "filters_query": canonical_query(params, keep=FILTER_PARAMS),
        "column_count": len(ExecutionTable.base_columns),
    }
    response = render(request, "executions/table/batch_group.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@with_workspace
def batch_detail(request, pk):
    """A batch: its progress, and its executions in the table's own layout."""
    batch = selectors.batch_get(workspace=request.workspace, pk=pk)
    entry = selectors.batch_entry(workspace=request.workspace, batch=batch)
    params = request.GET.copy()
    params.setlist("batch", [str(batch.pk)])
    if request.htmx and request.GET.get("part") == "progress":
        if not entry.is_active:
            response = render(
                request, "executions/batch_detail.html#progress", {"batch": batch, "entry": entry}
            )
            response.status_code = 286  # htmx: stop polling, the batch is done
            return response
        return render(
            request, "executions/batch_detail.html#progress", {"batch": batch, "entry": entry}
        )
    page = selectors.execution_table_page(workspace=request.workspace, params=params)
    table = execution_table(page.entries, inside_batch=True)
    context = {
        "batch": batch,
        "entry": entry,
        "page": page,
        "table": table,
        "headers": table.headers(page.sort),
        "segments": segments(table),
        "column_count": len(table.columns),
        "table_query": QueryDict(
            canonical_query(request.GET, keep=["sort", "per_page", *POSITION])
        ),
        "page_sizes": (20, 50, 100),
    }
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    template = "executions/batch_detail.html#batch-results" if partial else None
    response = render(request, template or "executions/batch_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
