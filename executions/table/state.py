"""The table state beyond its filters: sort and page size (TableStateForm, SORT_FIELDS),
and the HTML of the filter bar's controls (control_html, checkbox_options)."""

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

SORT_FIELDS = {
    # column name -> (model field, may be NULL)
    "started": ("created_at", False),
    "duration": ("duration_ms", True),
    "steps": ("step_count", False),
    "tokens": ("total_tokens", False),
    "cost": ("cost_usd", False),
    "credits": ("credits", True),
}
DEFAULT_SORT = "-started"
PAGE_SIZES = (20, 50, 100)
DEFAULT_PAGE_SIZE = 20


class TableStateForm(forms.Form):
    """Sort and page size. Page is read leniently by the selector (past the end
    means the last page), but a page that is not a number is reported too."""

    sort = forms.CharField(required=False)
    per_page = forms.TypedChoiceField(
        required=False,
        coerce=int,
        choices=[(str(n), str(n)) for n in PAGE_SIZES],
        error_messages={
            "invalid_choice": "Rows per page must be 20, 50 or 100; showing 20.",
        },
    )
    page = forms.CharField(required=False)

    def clean_sort(self):
        value = (self.cleaned_data.get("sort") or "").strip()
        if not value:
            return DEFAULT_SORT
        if value.lstrip("-") not in SORT_FIELDS:
            allowed = ", ".join(SORT_FIELDS)
            raise forms.ValidationError(
                f"Unknown sort “{value[:40]}”: sort by one of {allowed} (prefix - for "
                "descending). Sorted by start time instead."
            )
        return value

    def clean_page(self):
        value = (self.cleaned_data.get("page") or "").strip()
        if not value or value == "last":
            return value or 1
        try:
            number = int(value)
        except ValueError:
            raise forms.ValidationError(
                f"Page “{value[:20]}” is not a number; showing page 1."
            ) from None
        if number < 1:
            raise forms.ValidationError("Pages start at 1; showing page 1.")
        return number

    def state(self) -> dict:
        """The sort, page size and page to use: the valid values, defaults for the rest."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "sort": data.get("sort") or DEFAULT_SORT,
            "per_page": data.get("per_page") or DEFAULT_PAGE_SIZE,
            "page": data.get("page") or 1,
        }


def control_html(bound: forms.BoundField, choices=None, hidden=frozenset()) -> SafeString:
    """A filter's <input> or <select>, written directly.

    Django's widget templates render every <option> through its own template; with
    sixty versions in a drop-down that was most of the page's time.
    """
    widget = bound.field.widget
    attrs = {
        "name": bound.html_name,
        "id": bound.auto_id,
        "aria-describedby": f"err-{bound.name}",
        **widget.attrs,
    }
    value = bound.value()
    if isinstance(widget, forms.Select):
        values = value if isinstance(value, list | tuple) else [value]
        chosen = {str(v) for v in values if v not in (None, "")}
        options = format_html_join(
            "",
            '<option value="{}"{}{}>{}</option>',
            (
                (
                    str(v),
                    mark_safe(" selected") if str(v) in chosen else "",
                    mark_safe(" hidden") if str(v) in hidden else "",
                    label,
                )
                for v, label in (choices if choices is not None else bound.field.choices)
            ),
        )
        return format_html("<select{}>{}</select>", flatatt(attrs), options)
    attrs.setdefault("type", getattr(widget, "input_type", "text"))
    if bound.errors:
        # Kept as typed and marked: a date or number input would blank a value it
        # cannot parse, and the person could not see what was wrong.
        attrs["type"] = "text"
        attrs["aria-invalid"] = "true"
        attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
    shown = widget.format_value(value)
    if shown not in (None, ""):
        attrs["value"] = shown
    return format_html("<input{}>", flatatt(attrs))


def checkbox_options(bound: forms.BoundField) -> list[tuple[str, str, bool]]:
    """(value, label, ticked) for a multiple-choice filter drawn as checkboxes."""
    value = bound.value() or []
    chosen = {str(v) for v in (value if isinstance(value, list | tuple) else [value])}
    return [(str(v), label, str(v) in chosen) for v, label in bound.field.choices]
