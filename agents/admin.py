from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from .models import Agent, AgentVersion, ApiKey, Membership, ModelPrice, Schedule, Workspace


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a changelist over millions never runs a full COUNT(*).

    Below the cap the count is exact; above it the admin shows CAP+ pages' worth,
    which is all anyone pages through by hand. Filters narrow it back to exact.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()


def workspaces_of(user) -> QuerySet[Workspace]:
    return Workspace.objects.filter(memberships__user=user)


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see and pick only rows of their own workspaces."""

    workspace_path = "workspace"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_path}__in": workspaces_of(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "workspace" and not request.user.is_superuser:
            kwargs["queryset"] = workspaces_of(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScopedAdmin):
    workspace_path = "pk"
    list_display = ["name", "slug", "retention_days", "retention_keep_marked", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    list_select_related = ["user", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    autocomplete_fields = ["user"]


class AgentVersionInline(admin.StackedInline):
    model = AgentVersion
    extra = 0
    show_change_link = True
    fields = ["version", "time_limit_seconds", "webhook_url"]


@admin.register(Agent)
class AgentAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "retention_days", "created_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [AgentVersionInline]


@admin.register(AgentVersion)
class AgentVersionAdmin(WorkspaceScopedAdmin):
    workspace_path = "agent__workspace"
    list_display = ["__str__", "agent", "time_limit_seconds", "webhook_url", "created_at"]
    list_filter = ["agent__workspace"]
    list_select_related = ["agent", "agent__workspace"]
    search_fields = ["agent__name", "version"]
    autocomplete_fields = ["agent"]


@admin.register(ApiKey)
class ApiKeyAdmin(WorkspaceScopedAdmin):
    list_display = [
        "name",
        "prefix",
        "workspace",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["workspace", "created_by"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "last_used_at", "created_at"]
    fields = [
        "workspace",
        "name",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if not change:
            raw, obj.prefix, obj.hashed_key = ApiKey.generate()
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            # The only time the raw key exists outside the caller: it is stored hashed.
            self.message_user(
                request,
                f"API key created. Copy it now, it will not be shown again: {raw}",
                messages.WARNING,
            )
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(Schedule)
class ScheduleAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "agent_version", "describe", "enabled", "next_run_at", "last_run_at"]
    list_filter = ["enabled", "workspace"]
    list_select_related = ["agent_version__agent"]
    search_fields = ["name"]
    autocomplete_fields = ["agent_version"]
    readonly_fields = ["last_run_at"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "provider",
        "workspace",
        "input_per_million",
        "output_per_million",
        "cached_input_per_million",
        "cache_write_per_million",
        "effective_date",
        "is_default",
    ]
    search_fields = ["model", "provider"]
    list_filter = ["provider", "is_default", "workspace"]
    list_select_related = ["workspace"]
    readonly_fields = ["is_default"]

    def save_model(self, request, obj, form, change):
        # An edited default is staff's price now: model_prices_update must keep it.
        if change and form.changed_data:
            obj.is_default = False
        super().save_model(request, obj, form, change)
