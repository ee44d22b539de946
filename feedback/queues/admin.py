from django.contrib import admin

from agents.admin import WorkspaceScopedAdmin

from .models import Queue, QueueItem, Review


@admin.register(Queue)
class QueueAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "reviewers_per_item", "lock_seconds", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name"]
    filter_horizontal = ["assignees"]


@admin.register(QueueItem)
class QueueItemAdmin(WorkspaceScopedAdmin):
    list_display = ["execution", "queue", "state", "reviews_done", "created_at"]
    list_filter = ["state", "workspace"]
    raw_id_fields = ["execution", "queue"]
    list_select_related = ["queue"]


@admin.register(Review)
class ReviewAdmin(WorkspaceScopedAdmin):
    list_display = ["item", "reviewer", "started_at", "expires_at", "submitted_at", "skipped"]
    list_filter = ["skipped", "workspace"]
    raw_id_fields = ["item"]
    list_select_related = ["reviewer"]
