"""Alert rules in the admin (staff see their own workspaces' rules), with their history
and notification attempts read-only: those are records of what happened."""

from django.contrib import admin

from agents.admin import WorkspaceScopedAdmin

from .forms import FIELDS, AlertRuleAdminForm
from .models import AlertEvent, AlertRule, Notification


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    fields = ["at", "state", "value", "baseline", "threshold", "runs", "message"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    max_num = 0


@admin.register(AlertRule)
class AlertRuleAdmin(WorkspaceScopedAdmin):
    form = AlertRuleAdminForm
    list_display = ["name", "workspace", "metric", "state", "window_minutes", "enabled", "muted"]
    list_filter = ["state", "metric", "enabled", "muted"]
    search_fields = ["name", "agent_name"]
    fields = ["workspace", *FIELDS]
    raw_id_fields = ["agent_version", "saved_view"]
    inlines = [AlertEventInline]

    def save_model(self, request, obj, form, change):
        from .evaluate import firing_counts

        super().save_model(request, obj, form, change)
        firing_counts(workspace_ids={obj.workspace_id})


class ReadOnlyAdmin(WorkspaceScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    workspace_path = "rule__workspace"
    list_display = ["rule", "state", "at", "value", "baseline", "threshold", "runs"]
    list_filter = ["state"]
    date_hierarchy = "at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    workspace_path = "event__rule__workspace"
    list_display = ["event", "channel", "attempt", "succeeded", "status_code", "at"]
    list_filter = ["channel", "succeeded"]
