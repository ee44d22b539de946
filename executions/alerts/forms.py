"""The rule form: every field checked, each error shown next to its field."""

from decimal import Decimal

from django import forms
from django.core.validators import validate_email

from agents.models import AgentVersion
from executions.models import SavedView

from . import metrics
from .models import WINDOW_MAX, WINDOW_MIN, AlertRule, Metric

FIELDS = [
    "name",
    "metric",
    "agent_name",
    "agent_version",
    "saved_view",
    "field_name",
    "window_minutes",
    "condition",
    "threshold",
    "baseline_factor",
    "min_runs",
    "sustain",
    "enabled",
    "muted",
    "snoozed_until",
    "webhook_url",
    "webhook_secret",
    "slack_url",
    "emails",
]


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = FIELDS
        labels = {
            "agent_name": "Agent",
            "agent_version": "Version",
            "saved_view": "Saved view",
            "field_name": "Field (JSON Pointer, for the correction rate)",
            "window_minutes": f"Window (minutes, {WINDOW_MIN}-{WINDOW_MAX})",
            "threshold": "Fixed value",
            "baseline_factor": "Or: times the trailing 7-day value",
            "min_runs": "Minimum runs",
            "sustain": "Sustained for (evaluations, one a minute)",
            "snoozed_until": "Snoozed until (ISO time)",
            "webhook_url": "Signed webhook URL",
            "slack_url": "Slack incoming-webhook URL",
            "emails": "Email to",
        }
        widgets = {"webhook_secret": forms.PasswordInput(render_value=True)}

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["agent_version"].queryset = (
            AgentVersion.objects.filter(agent__workspace=workspace)
            .select_related("agent")
            .only("id", "version", "agent__name")
        )
        self.fields["saved_view"].queryset = SavedView.objects.filter(workspace=workspace)

    def clean_emails(self):
        raw = self.cleaned_data.get("emails", "")
        addresses = [a.strip() for a in raw.split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"“{address}” is not an email address.") from None
        return ", ".join(addresses)

    def clean(self):
        data = super().clean()
        threshold, factor = data.get("threshold"), data.get("baseline_factor")
        if threshold is None and factor is None and not self.has_error("threshold"):
            self.add_error("threshold", "Give a fixed value or a factor of the baseline.")
        if threshold is not None and factor is not None:
            self.add_error("baseline_factor", "Give a fixed value or a factor, not both.")
        if factor is not None and factor <= Decimal(0):
            self.add_error("baseline_factor", "The factor must be greater than 0.")
        named = ("agent_name", "agent_version", "saved_view")
        scopes = [n for n in named if data.get(n) not in ("", None)]
        if len(scopes) > 1:
            self.add_error(scopes[1], "Scope by one of agent, version or saved view.")
        if factor is not None and data.get("metric") == Metric.APPROVALS_WAITING:
            # Who waited a week ago is not kept: there is nothing to compare with.
            self.add_error("baseline_factor", "Approvals waiting has no baseline: give a value.")
        if data.get("field_name") and data.get("metric") != Metric.CORRECTION_RATE:
            self.add_error("field_name", "A field is only used by the correction rate.")
        view = data.get("saved_view")
        if view is not None and self.workspace is not None:
            # Every filter of the view is applied (metrics.scope_of), so one that
            # cannot be is refused here rather than silently ignored.
            problems = metrics.view_problems(view, self.workspace.pk)
            if problems:
                self.add_error(
                    "saved_view",
                    f"The view “{view}” cannot scope a rule: {'; '.join(problems)}.",
                )
        if data.get("webhook_secret") and not data.get("webhook_url"):
            self.add_error("webhook_secret", "A secret signs the webhook: give its URL too.")
        return data


class AlertRuleAdminForm(AlertRuleForm):
    """The admin's form: the same checks, for a workspace picked in the form itself. The
    version and view must belong to that workspace (raw id fields accept any id)."""

    class Meta(AlertRuleForm.Meta):
        fields = ["workspace", *FIELDS]

    def __init__(self, *args, **kwargs):
        instance = kwargs.get("instance")
        super().__init__(*args, workspace=instance.workspace if instance else None, **kwargs)
        self.fields["agent_version"].queryset = AgentVersion.objects.all()
        self.fields["saved_view"].queryset = SavedView.objects.all()

    def clean(self):
        self.workspace = self.cleaned_data.get("workspace")
        data = super().clean()
        if self.workspace is None:
            return data
        version, view = data.get("agent_version"), data.get("saved_view")
        if version is not None and version.agent.workspace_id != self.workspace.pk:
            self.add_error("agent_version", "This version belongs to another workspace.")
        if view is not None and view.workspace_id != self.workspace.pk:
            self.add_error("saved_view", "This view belongs to another workspace.")
        return data
