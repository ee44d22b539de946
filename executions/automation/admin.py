from django.contrib import admin

from agents.admin import WorkspaceScopedAdmin

from .models import Rule, RuleRun


@admin.register(Rule)
class RuleAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "trigger", "enabled", "sample_percent", "queue", "created_at"]
    list_filter = ["trigger", "enabled", "workspace"]
    search_fields = ["name"]
    raw_id_fields = ["saved_view", "queue"]


@admin.register(RuleRun)
class RuleRunAdmin(WorkspaceScopedAdmin):
    """Each rule's log: what it decided on each run and what its actions did."""

    workspace_path = "rule__workspace"
    list_display = ["rule", "execution", "outcome", "backfill", "created_at"]
    list_filter = ["outcome", "backfill"]
    raw_id_fields = ["execution"]
    list_select_related = ["rule"]
    readonly_fields = ["rule", "execution", "outcome", "detail", "backfill", "created_at"]

    def has_add_permission(self, request):
        return False
