"""Forms of the control plane's dashboard: they parse and validate, services do the rest."""

import json

from django import forms

from agents.models import AgentVersion
from executions import json_input
from executions.models import Priority

from . import selectors

EXAMPLES = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


def inputs_skeleton(version: AgentVersion | None) -> str:
    """A starting point for the inputs box: the schema's properties with empty values."""
    schema = (version.input_schema if version else None) or {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return "{}"
    skeleton = {}
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        if "default" in spec:
            skeleton[name] = spec["default"]
        elif isinstance(spec.get("examples"), list) and spec["examples"]:
            skeleton[name] = spec["examples"][0]
        else:
            kind = spec.get("type")
            skeleton[name] = EXAMPLES.get(kind if isinstance(kind, str) else "string", "")
    return json.dumps(skeleton, indent=2)


def _json_field(value: str, field: str):
    text = (value or "").strip()
    if not text:
        return None
    try:
        # What the database cannot store (NaN, 1e400, NUL, lone surrogates, nesting
        # past MAX_JSON_DEPTH) is refused here too, with where it is.
        return json_input.loads(text)
    except json_input.JsonInputError as exc:
        bad = exc.__cause__
        if isinstance(bad, json.JSONDecodeError):
            raise forms.ValidationError(
                f"{field}: not valid JSON ({bad.msg} at line {bad.lineno}, column {bad.colno})."
            ) from None
        raise forms.ValidationError(f"{field}: {exc}.") from None


class RunForm(forms.Form):
    version = forms.ModelChoiceField(
        queryset=AgentVersion.objects.none(), label="Agent version", empty_label=None
    )
    inputs = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
        initial="{}",
        help_text="A JSON object; or a JSON list of objects to run each one, as one batch.",
    )
    priority = forms.ChoiceField(
        choices=[(p.label, p.label.capitalize()) for p in Priority], initial="normal"
    )
    metadata = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text='Optional JSON object, e.g. {"ticket": "OPS-12"}.',
    )
    batch_name = forms.CharField(
        required=False, max_length=200, help_text="Only for a list of inputs."
    )

    def __init__(self, *args, workspace, agent=None, **kwargs):
        super().__init__(*args, **kwargs)
        versions = selectors.run_versions(workspace=workspace, agent=agent)
        self.fields["version"].queryset = versions
        self.fields["version"].label_from_instance = lambda v: v.full_name
        if not self.is_bound:
            first = versions.first()
            if first is not None:
                self.initial.setdefault("version", first.pk)
                self.initial.setdefault("inputs", inputs_skeleton(first))

    def clean_inputs(self):
        value = _json_field(self.cleaned_data.get("inputs"), "inputs")
        if value is None:
            return {}
        if isinstance(value, list):
            if not value:
                raise forms.ValidationError("inputs: the list is empty; give at least one object.")
            bad = [i for i, item in enumerate(value) if not isinstance(item, dict)]
            if bad:
                raise forms.ValidationError(
                    f"inputs[{bad[0]}]: each item of the list must be a JSON object."
                )
        elif not isinstance(value, dict):
            raise forms.ValidationError(
                f"inputs: must be a JSON object or a list of them, not {type(value).__name__}."
            )
        return value

    def clean_metadata(self):
        value = _json_field(self.cleaned_data.get("metadata"), "metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("metadata: must be a JSON object.")
        return value


class DecisionForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )


class RerunForm(RunForm):
    """The Run form pre-filled with a finished run's version, inputs, priority and
    metadata, to edit before starting it again; one run, no batch."""

    def __init__(self, *args, execution, **kwargs):
        agent = execution.agent
        super().__init__(*args, workspace=execution.workspace, agent=agent, **kwargs)
        del self.fields["batch_name"]
        self.fields["inputs"].help_text = "A JSON object."
        if not self.is_bound:
            self.initial["version"] = execution.agent_version_id
            self.initial["inputs"] = json.dumps(execution.input, indent=2, ensure_ascii=False)
            self.initial["priority"] = Priority(execution.priority).label
            if execution.metadata:
                self.initial["metadata"] = json.dumps(
                    execution.metadata, indent=2, ensure_ascii=False
                )

    def clean_inputs(self):
        value = super().clean_inputs()
        if isinstance(value, list):
            raise forms.ValidationError("inputs: a rerun takes one JSON object, not a list.")
        return value
