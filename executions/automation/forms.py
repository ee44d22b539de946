"""The rule form of the dashboard: each error names its field and shows beside it."""

from django import forms

from agents.validation import url_problem
from executions.models import SavedView
from executions.tags.services import TagError, clean_tags
from feedback.queues.models import Queue

from .models import Rule


class RuleForm(forms.ModelForm):
    tags = forms.CharField(
        required=False,
        label="Tag it",
        help_text="Comma-separated tags, such as needs-review, refund.",
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "enabled",
            "trigger",
            "saved_view",
            "sample_percent",
            "queue",
            "tags",
            "webhook_url",
            "webhook_secret",
        ]
        labels = {
            "trigger": "When",
            "saved_view": "And it matches the saved view",
            "sample_percent": "For this % of them",
            "queue": "Add it to the review queue",
            "webhook_url": "Call the webhook",
            "webhook_secret": "Webhook signing secret",
        }
        help_texts = {
            "saved_view": "None: every run.",
            "sample_percent": "0 to 100; the same runs are picked every time (a hash of the "
            "rule and the run).",
            "webhook_url": "Signed with the secret; sent from the task queue, never during "
            "ingestion.",
        }
        widgets = {"webhook_secret": forms.PasswordInput(render_value=True)}

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["saved_view"].queryset = SavedView.objects.filter(workspace=workspace)
        self.fields["queue"].queryset = Queue.objects.filter(workspace=workspace)
        self.fields["saved_view"].empty_label = "(any run)"
        self.fields["queue"].empty_label = "(none)"
        if self.instance.pk and not self.is_bound:
            self.initial["tags"] = ", ".join(self.instance.tags)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        same = Rule.objects.filter(workspace=self.workspace, name=name)
        if self.instance.pk:
            same = same.exclude(pk=self.instance.pk)
        if same.exists():
            raise forms.ValidationError("A rule with this name exists.")
        return name

    def clean_tags(self):
        raw = [t for t in self.cleaned_data.get("tags", "").split(",") if t.strip()]
        if not raw:
            return []
        try:
            return clean_tags(raw)
        except TagError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_webhook_url(self):
        url = self.cleaned_data.get("webhook_url", "")
        if url and (problem := url_problem(url)):
            raise forms.ValidationError(f"Webhook URL {problem}.")
        return url

    def clean(self):
        data = super().clean()
        if data.get("webhook_secret") and not data.get("webhook_url"):
            self.add_error("webhook_secret", "A secret signs the webhook: give its URL too.")
        has_action = data.get("queue") or data.get("tags") or data.get("webhook_url")
        if not has_action and not any(self.has_error(f) for f in ("queue", "tags", "webhook_url")):
            self.add_error(None, "Give at least one action: a review queue, tags or a webhook.")
        return data
