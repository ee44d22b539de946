from django.urls import path

from . import views

app_name = "feedback"
urlpatterns = [
    path("executions/<uuid:pk>/feedback/", views.feedback_form, name="form"),
    path("executions/<uuid:pk>/feedback/diff/", views.feedback_diff, name="diff"),
    path("executions/<uuid:pk>/feedback/notes/", views.feedback_notes, name="notes"),
    path(
        "executions/<uuid:pk>/feedback/corrections/<int:correction_id>/undo/",
        views.feedback_undo,
        name="undo",
    ),
    path(
        "agents/<slug:slug>/versions/<int:version_id>/corrected.jsonl",
        views.corrected_export,
        name="export",
    ),
]
