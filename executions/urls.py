from django.urls import path

from . import stream
from .views import detail, table

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
]
