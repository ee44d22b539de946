from django.contrib import admin

from agents.admin import WorkspaceScopedAdmin

from .models import ExecutionNote, FieldCorrection


@admin.register(FieldCorrection)
class FieldCorrectionAdmin(WorkspaceScopedAdmin):
    list_display = ["path", "op", "execution", "author", "created_at"]
    list_filter = ["op", "workspace"]
    list_select_related = ["author"]
    search_fields = ["path", "=execution__id"]
    raw_id_fields = ["execution"]
    # Corrections are history: they are never edited, only added.
    readonly_fields = [
        "workspace",
        "execution",
        "path",
        "op",
        "value_before",
        "value_after",
        "author",
        "comment",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(ExecutionNote)
class ExecutionNoteAdmin(WorkspaceScopedAdmin):
    list_display = ["execution", "rating", "author", "created_at"]
    list_filter = ["rating", "workspace"]
    list_select_related = ["author"]
    search_fields = ["text", "=execution__id"]
    raw_id_fields = ["execution"]
