from django.urls import path

from . import views

app_name = "executions"
urlpatterns = [
    path("", views.execution_list, name="list"),
    path("<uuid:pk>/", views.execution_detail, name="detail"),
    path("batches/<uuid:pk>/", views.batch_detail, name="batch_detail"),
]
