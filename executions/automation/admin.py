from django.contrib import admin, messages
from django.db import transaction

from agents.admin import WorkspaceScopedAdmin

from .models import Rule, RuleRun


@admin.register(Rule)
class RuleAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "trigger", "enabled", "sample_percent", "queue", "created_at"]
    list_filter = ["trigger", "enabled", "workspace"]
    search_fields = ["name"]
    raw_id_fields = ["saved_view", "queue"]
    actions = ["backfill"]

    @admin.action(description="Backfill over past runs (each run at most once)")
    def backfill(self, request, queryset):
        from .tasks import backfill

        for rule in queryset:
            transaction.on_commit(lambda pk=rule.pk: backfill.enqueue(pk))
        self.message_user(
            request,
            f"Backfill queued for {queryset.count()} rule(s); see each rule's log.",
            messages.SUCCESS,
        )


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
