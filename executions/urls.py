from django.urls import path

from .control import views as control
from .detail import stream
from .detail import views as detail
from .table import views as table

app_name = "executions"
urlpatterns = [
    path("", table.execution_list, name="list"),
    path("<uuid:pk>/", detail.execution_detail, name="detail"),
    path("<uuid:pk>/steps/<int:sequence>/", detail.step_detail, name="step"),
    path("<uuid:pk>/stream", stream.execution_stream, name="stream"),
    path("<uuid:pk>/output.json", detail.output_download, name="output_json"),
    path("<uuid:pk>/request.json", detail.request_body_download, name="request_json"),
    path("artifacts/<uuid:pk>/", detail.artifact_download, name="artifact"),
    path("batches/<uuid:pk>/", table.batch_detail, name="batch_detail"),
    path("batches/<uuid:pk>/rows/", table.batch_rows, name="batch_rows"),
    path("live/", table.execution_live, name="live"),
    path("export.csv", table.execution_export, {"fmt": "csv"}, name="export_csv"),
    path("export.json", table.execution_export, {"fmt": "json"}, name="export_json"),
    path("views/", table.saved_view_create, name="view_create"),
    path("views/<int:pk>/delete/", table.saved_view_remove, name="view_delete"),
    # The control plane: run, rerun, cancel, approvals, schedules.
    path("run/", control.execution_run, name="run"),
    path("approvals/", control.approval_queue, name="approvals"),
    path("cancel/", control.executions_bulk_cancel, name="bulk_cancel"),
    path("<uuid:pk>/rerun/", control.execution_rerun, name="rerun"),
    path("<uuid:pk>/cancel/", control.execution_cancel, name="cancel"),
    path("<uuid:pk>/approve/", control.execution_approve, name="approve"),
    path("<uuid:pk>/reject/", control.execution_reject, name="reject"),
    path("schedules/<int:pk>/toggle/", control.schedule_toggle, name="schedule_toggle"),
]
