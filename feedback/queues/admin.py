from django import forms
from django.contrib import admin

from agents.admin import WorkspaceScopedAdmin

from . import rubric
from .models import Queue, QueueItem, Review


class QueueForm(forms.ModelForm):
    """The rubric checked as the API checks it, each problem on its field."""

    class Meta:
        model = Queue
        fields = [
            "workspace",
            "name",
            "instructions",
            "assignees",
            "reviewers_per_item",
            "lock_seconds",
            "fields",
            "questions",
        ]

    def clean_fields(self):
        value = self.cleaned_data.get("fields")
        if problems := rubric.check_fields(value if value is not None else []):
            raise forms.ValidationError(" ".join(problems))
        return value or []

    def clean_questions(self):
        value = self.cleaned_data.get("questions")
        if problems := rubric.check_questions(value if value is not None else []):
            raise forms.ValidationError(" ".join(problems))
        return value or []


@admin.register(Queue)
class QueueAdmin(WorkspaceScopedAdmin):
    form = QueueForm
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
