from django.urls import path

from .views import detail, table

app_name = "executions"
urlpatterns = [
    path("", table.execution_list, name="list"),
    path("<uuid:pk>/", detail.execution_detail, name="detail"),
    path("batches/<uuid:pk>/", table.batch_detail, name="batch_detail"),
]
