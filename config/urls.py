from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from agents import views as agent_views
from config.api import api
from executions.ingest.otlp import logs_view, traces_view
from executions.overview import views as overview_views
from executions.tags import views as tags_views


class FaviconView(RedirectView):
    """Browsers ask /favicon.ico of pages without a <link rel=icon> (JSON, files)."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs):
        return static("img/favicon.svg")


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="executions:list"), name="home"),
    # The icon is public, like the static file it points to.
    path("favicon.ico", login_not_required(FaviconView.as_view())),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspaces/switch/", agent_views.workspace_switch, name="workspace_switch"),
    # Workspace-level, not under /agents/, so no agent's slug can collide with it.
    path("workspace/api-keys/", agent_views.api_key_list, name="api_keys"),
    path("workspace/api-keys/<int:pk>/revoke/", agent_views.api_key_revoke, name="api_key_revoke"),
    path("executions/", include("executions.urls")),
    path("agents/", include("agents.urls")),
    path("overview/", overview_views.overview, name="overview"),
    path("overview/export.csv", overview_views.overview_csv, name="overview_csv"),
    # Feedback lives under executions/<id>/feedback/ and agents/<slug>/versions/: its own
    # patterns, so it can be mounted without touching the other apps' url files.
    path("", include("feedback.urls")),
    path("reviews/rules/", include("executions.automation.urls")),
    path("reviews/", include("feedback.queues.urls")),
    path("executions/tags/", tags_views.tags_bulk, name="tags_bulk"),
    path("alerts/", include("executions.alerts.urls")),
    path("admin/", admin.site.urls),
    # Agent runtimes: the JSON API and OTLP/HTTP traces, both authenticated by API key.
    path("api/v1/", api.urls),
    path("v1/traces", traces_view, name="otlp_traces"),
    path("v1/logs", logs_view, name="otlp_logs"),
]

# A database that cannot be reached answers 503 + Retry-After, not a 500 (config/errors.py).
handler500 = "config.errors.server_error"
