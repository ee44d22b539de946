from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from agents.admin import CappedCountPaginator, WorkspaceScopedAdmin

from .models import (
    Artifact,
    Batch,
    Execution,
    ExecutionCounter,
    ExecutionPin,
    ExecutionSearch,
    PendingSpanEvents,
    SavedView,
    Step,
    WebhookDelivery,
)

STEP_PREVIEW = 50

# Written by ingestion: staff may read them, never edit them.
INGESTED_FIELDS = [
    "id",
    "workspace",
    "agent",
    "agent_version",
    "agent_name",
    "version_name",
    "status",
    "source",
    "input",
    "output",
    "summary",
    "error",
    "failure_reason",
    "metadata",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "credits",
    "step_count",
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
    "duration_ms",
    "updated_at",
    "trace_id",
    "session_id",
    "idempotency_key",
    "triggered_by",
    "request",
    "rerun_of",
    "batch",
    "schedule",
    "correction_count",
    "note_count",
    "approval_request",
    "approval_note",
    "decided_by",
    "decided_at",
]


@admin.register(Execution)
class ExecutionAdmin(WorkspaceScopedAdmin):
    list_display = [
        "short_id",
        "agent_label",
        "status",
        "source",
        "created_at",
        "duration_ms",
        "step_count",
        "total_tokens",
        "cost_usd",
        "credits",
    ]
    list_filter = ["status", "source", "priority", "workspace"]
    search_fields = ["=id", "=trace_id", "^agent_name"]
    # A million-row changelist must not count them all: no full count, a capped paginator.
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    readonly_fields = [*INGESTED_FIELDS, "steps_preview"]
    fields = ["priority", *INGESTED_FIELDS, "steps_preview"]

    @admin.display(description="ID")
    def short_id(self, obj):
        return obj.short_id

    @admin.display(description="Steps")
    def steps_preview(self, obj):
        # An execution may have thousands of steps: show the first few and link to the rest
        # rather than rendering an inline of every row.
        steps = obj.steps.order_by("sequence")[:STEP_PREVIEW]
        rows = format_html_join(
            "",
            "<li>#{} {} <b>{}</b> ({})</li>",
            ((s.sequence, s.get_kind_display(), s.name, s.status) for s in steps),
        )
        link = reverse("admin:executions_step_changelist") + f"?execution__id__exact={obj.pk}"
        return format_html(
            '<ol class="steps-preview">{}</ol><a href="{}">All {} steps</a>',
            rows,
            link,
            obj.step_count,
        )

    def has_add_permission(self, request):
        return False


@admin.register(Step)
class StepAdmin(WorkspaceScopedAdmin):
    workspace_path = "execution__workspace"
    list_display = ["sequence", "kind", "name", "status", "model", "duration_ms", "execution"]
    list_filter = ["kind", "status"]
    search_fields = ["=execution__id", "=span_id"]
    raw_id_fields = ["execution", "parent"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = [f.name for f in Step._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Artifact)
class ArtifactAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "kind", "content_type", "size", "execution", "created_at"]
    list_filter = ["kind", "workspace"]
    search_fields = ["name", "=execution__id"]
    raw_id_fields = ["execution", "step"]
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(Batch)
class BatchAdmin(WorkspaceScopedAdmin):
    list_display = ["__str__", "agent_version", "created_by", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["agent_version__agent", "created_by"]
    search_fields = ["name", "=id"]
    raw_id_fields = ["agent_version"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WorkspaceScopedAdmin):
    workspace_path = "execution__workspace"
    list_display = ["execution", "event", "attempt", "status_code", "succeeded", "created_at"]
    list_filter = ["event", "succeeded"]
    search_fields = ["=execution__id", "url"]
    raw_id_fields = ["execution"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]


@admin.register(SavedView)
class SavedViewAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "owner", "query", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace", "owner"]
    search_fields = ["name"]
    raw_id_fields = ["owner"]


@admin.register(ExecutionPin)
class ExecutionPinAdmin(WorkspaceScopedAdmin):
    """Pinned runs: retention keeps them (while the workspace keeps marked runs)."""

    list_display = ["execution", "workspace", "pinned_by", "reason", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace", "pinned_by"]
    raw_id_fields = ["execution", "pinned_by"]


@admin.register(PendingSpanEvents)
class PendingSpanEventsAdmin(WorkspaceScopedAdmin):
    """Read-only: GenAI log events waiting for their span (ingest/logs.py)."""

    list_display = ["trace_id", "span_id", "workspace", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    search_fields = ["trace_id", "span_id"]
    readonly_fields = ["workspace", "trace_id", "span_id", "events", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(ExecutionCounter)
class ExecutionCounterAdmin(WorkspaceScopedAdmin):
    """Read-only: the counts are kept by the code that writes executions."""

    list_display = ["workspace", "agent_name", "status", "count"]
    list_filter = ["status", "workspace"]
    list_select_related = ["workspace"]
    search_fields = ["agent_name"]
    readonly_fields = ["workspace", "agent_name", "status", "count"]

    def has_add_permission(self, request):
        return False


@admin.register(ExecutionSearch)
class ExecutionSearchAdmin(WorkspaceScopedAdmin):
    """Read-only: database triggers copy these rows from the executions."""

    # The execution by its id, not str(execution): that would load every listed
    # execution's whole row (input, output) for its label.
    list_display = [
        "execution_id",
        "workspace",
        "agent_name",
        "status",
        "has_error",
        "created_at",
        "open_execution",
    ]
    list_filter = ["status", "has_error"]
    list_select_related = ["workspace"]
    raw_id_fields = ["execution", "batch"]
    readonly_fields = [f.name for f in ExecutionSearch._meta.fields]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Execution")
    def open_execution(self, obj):
        url = reverse("admin:executions_execution_change", args=[obj.execution_id])
        return format_html('<a href="{}">open</a>', url)


class RollupAdmin(WorkspaceScopedAdmin):
    """Read-only: database triggers keep these rows (`manage.py rebuild_rollups` recounts
    them). The workspace is a plain id, since the triggers own the rows."""

    workspace_path = "workspace_id"
    date_hierarchy = "hour"
    list_filter = ["hour"]
    show_full_result_count = False

    def get_list_display(self, request):
        return [field.name for field in self.model._meta.fields if field.name != "id"][:9]

    def get_search_fields(self, request):
        names = {field.name for field in self.model._meta.fields}
        return ["agent_name"] if "agent_name" in names else []

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DailyRollupAdmin(RollupAdmin):
    """The daily tier: the same, by its `day`."""

    date_hierarchy = "day"
    list_filter = ["day"]


# Every rollup table of the overview, present and future: all are trigger-owned and
# read the same way, so a new one is visible to staff without another admin class.
for _model in apps.get_app_config("executions").get_models():
    if _model.__module__ == "executions.overview.models":
        _fields = {field.name for field in _model._meta.fields}
        admin.site.register(_model, DailyRollupAdmin if "day" in _fields else RollupAdmin)

from executions.alerts import admin as _alerts_admin  # noqa: E402, F401 - registers the alert models
