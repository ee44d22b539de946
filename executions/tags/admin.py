from django.contrib import admin

from agents.admin import WorkspaceScopedAdmin

from .models import ExecutionTag


@admin.register(ExecutionTag)
class ExecutionTagAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "execution", "created_by", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "=execution__id"]
    raw_id_fields = ["execution"]
