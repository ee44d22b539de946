from django.urls import path

from . import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list, name="list"),
    # Before <slug>: an agent called "api-keys" is shadowed here; its page stays in admin.
    path("api-keys/", views.api_key_list, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("<slug:slug>/", views.agent_detail, name="detail"),
]
