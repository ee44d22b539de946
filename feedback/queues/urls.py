from django.urls import path

from . import views

app_name = "queues"
urlpatterns = [
    path("", views.my_reviews, name="mine"),
    path("add/", views.queue_add, name="add"),
    path("new/", views.queue_new, name="new"),
    path("<int:pk>/", views.queue_detail, name="detail"),
    path("<int:pk>/start/", views.queue_start, name="start"),
    path("<int:pk>/export.jsonl", views.queue_export, name="export"),
    path("claims/<int:pk>/", views.review_page, name="review"),
    path("claims/<int:pk>/renew/", views.review_renew, name="renew"),
    path("items/<int:pk>/resolve/", views.item_resolve, name="resolve"),
]
