from django.urls import path

from . import editing, views

app_name = "queues"
urlpatterns = [
    path("", views.my_reviews, name="mine"),
    path("add/", views.queue_add, name="add"),
    path("new/", editing.queue_edit, name="new"),
    path("<int:pk>/edit/", editing.queue_edit, name="edit"),
    path("<int:pk>/", views.queue_detail, name="detail"),
    path("<int:pk>/start/", views.queue_start, name="start"),
    path("<int:pk>/export.jsonl", views.queue_export, name="export"),
    path("claims/<int:pk>/", views.review_page, name="review"),
    path("claims/<int:pk>/renew/", views.review_renew, name="renew"),
    path("items/<int:pk>/resolve/", views.item_resolve, name="resolve"),
]
