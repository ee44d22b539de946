"""The executions table's filters (the sort and page-size form is in state.py).

Every filter validates on its own: a bad value is reported beside its field and
dropped, while the other filters keep applying (django-filter filters with the
form's cleaned_data, which holds only the fields that validated).

Over 500 lines on purpose: one FilterSet with its filter methods; django-filter
declares a FilterSet as one class, which cannot be split across modules.
"""

import re
import unicodedata
import uuid
from datetime import datetime, time, timedelta
from decimal import Decimal

import django_filters
from django import forms
from django.db import connections
from django.db.models import CharField, Exists, F, Func, OuterRef, Q, QuerySet, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Concat, Upper
from django.utils import timezone
from django.utils.functional import cached_property

from agents.models import Agent, AgentVersion, Schedule, Workspace
from executions import timestamps
from executions.models import (
    ACTIVE_STATUSES,
    Batch,
    ExecutionCounter,
    ExecutionSearch,
    Source,
    Status,
    Step,
)
from executions.tags.models import TAG_RE, ExecutionTag

ACTIVE = "active"
STATUS_CHOICES = [(ACTIVE, "Active (not finished)"), *Status.choices]

FEEDBACK_ANY = "any"
FEEDBACK_CORRECTED = "corrected"
# Runs whose budget (executions/budgets) flagged them (a soft limit) or stopped them.
BUDGET_FLAGGED = "flagged"
BUDGET_STOPPED = "stopped"

# Below this many characters a substring search cannot use the trigram indexes
# and would scan every row.
SEARCH_MIN_CHARS = 3
SEARCH_MAX_CHARS = 200
# An id prefix must be long enough that the range it selects is small.
ID_PREFIX_MIN_CHARS = 4
HEX = re.compile(r"^[0-9a-f]+$")


class SingleSelectList(forms.Select):
    """A plain one-choice <select> whose value is read as a list.

    The agent filter accepts ?agent=a&agent=b in a URL (a saved view may hold
    several) while the form offers the usual single drop-down.
    """

    allow_multiple_selected = True

    def value_from_datadict(self, data, files, name):
        getlist = getattr(data, "getlist", None)
        if getlist is not None:
            return [v for v in getlist(name) if v != ""]
        value = data.get(name)
        return [value] if value else []

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"].pop("multiple", None)
        return context


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class MetadataField(forms.CharField):
    """`key=value`: the key is any metadata key, the value is matched as text and,
    when it reads as a JSON number or boolean, as that too."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        key, sep, wanted = value.partition("=")
        key = key.strip()
        if not sep or not key:
            raise forms.ValidationError(
                "Write metadata as key=value, for example customer=acme.", code="format"
            )
        if len(key) > 100:
            raise forms.ValidationError("The metadata key is longer than 100 characters.")
        return key, wanted.strip()


class SearchField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        value = value.strip()
        if len(value) > SEARCH_MAX_CHARS:
            raise forms.ValidationError(
                f"Search is limited to {SEARCH_MAX_CHARS} characters.", code="max_length"
            )
        if any(unicodedata.category(c) == "Cc" for c in value):
            # A line break could match across the error and summary of the search
            # table's document, and nobody types one into a search box.
            raise forms.ValidationError(
                "Search cannot contain line breaks, tabs or other control characters.",
                code="control_characters",
            )
        compact = value.replace("-", "").lower()
        looks_like_id = HEX.match(compact) and len(compact) >= ID_PREFIX_MIN_CHARS
        if len(value) < SEARCH_MIN_CHARS and not looks_like_id:
            raise forms.ValidationError(
                f"Search needs at least {SEARCH_MIN_CHARS} characters (or the start of an "
                f"execution id, {ID_PREFIX_MIN_CHARS} or more hex digits).",
                code="min_length",
            )
        return value


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField


class MetadataFilter(django_filters.CharFilter):
    field_class = MetadataField


def id_prefix_range(text: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The smallest and largest UUID starting with these hex digits, or None."""
    compact = text.replace("-", "").lower()
    if not (ID_PREFIX_MIN_CHARS <= len(compact) < 32 and HEX.match(compact)):
        return None
    return uuid.UUID(compact.ljust(32, "0")), uuid.UUID(compact.ljust(32, "f"))


def full_uuid(text: str) -> uuid.UUID | None:
    compact = text.replace("-", "").lower()
    if len(compact) != 32 or not HEX.match(compact):
        return None
    return uuid.UUID(compact)


def validate_day(day) -> None:
    # ?end=9999-12-31 would filter up to a midnight no datetime can hold.
    if day and (problem := timestamps.day_problem(day)):
        raise forms.ValidationError(problem, code="out_of_range")


def local_midnight(day) -> datetime:
    """The start of a calendar day in the user's time zone (TimezoneMiddleware set it)."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def filter_choices(workspace: Workspace) -> dict[str, list[tuple[str, str]]]:
    """The drop-downs' options, in one query: agents, versions and schedules.

    Agents are every name that has executions here, removed agents included (their
    executions keep the name), plus live agents that have not run yet.
    """
    text = CharField()

    def rows(queryset, kind, key, label):
        return (
            queryset.order_by()
            .annotate(kind=Value(kind, output_field=text), key=key, label=label)
            .values_list("kind", "key", "label")
        )

    ran = rows(
        ExecutionCounter.objects.filter(workspace=workspace, count__gt=0),
        "ran",
        F("agent_name"),
        F("agent_name"),
    )
    agents = rows(Agent.objects.filter(workspace=workspace), "agent", F("name"), F("name"))
    versions = rows(
        AgentVersion.objects.filter(agent__workspace=workspace),
        "version",
        Cast("pk", text),
        Concat("agent__name", Value(":"), "version", output_field=text),
    )
    schedules = rows(
        Schedule.objects.filter(workspace=workspace), "schedule", Cast("pk", text), F("name")
    )
    found: dict[str, dict[str, str]] = {"ran": {}, "agent": {}, "version": {}, "schedule": {}}
    for kind, key, label in ran.union(agents, versions, schedules, all=True):
        found[kind][key] = label
    live = found["agent"]
    names = sorted(set(found["ran"]) | set(live), key=str.lower)

    def by_label(options: dict[str, str]) -> list[tuple[str, str]]:
        return sorted(options.items(), key=lambda option: option[1].lower())

    return {
        "agent": [("", "All agents"), *((n, n if n in live else f"{n} (removed)") for n in names)],
        "version": [("", "All versions"), *by_label(found["version"])],
        "schedule": [("", "All schedules"), *by_label(found["schedule"])],
    }


MAX_TAG_FILTERS = 10


class TagListField(forms.Field):
    """tag=a&tag=b: every value of the repeated parameter (a run must carry them all)."""

    widget = forms.SelectMultiple
    # No list of every tag to pick from (that would be a query per page): the filter is
    # set by links (the chips in the rows) and kept in the URL.
    choices: list = []

    def to_python(self, value):
        if value in (None, "", []):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [str(v).strip().lower() for v in values if str(v).strip()]

    def validate(self, value):
        super().validate(value)
        if len(value) > MAX_TAG_FILTERS:
            raise forms.ValidationError(f"At most {MAX_TAG_FILTERS} tags at once.")
        for tag in value:
            if not TAG_RE.match(tag):
                raise forms.ValidationError(f"{tag!r} is not a tag name.")


class TagFilter(django_filters.Filter):
    field_class = TagListField


class ExecutionFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            # add_error drops "end" from cleaned_data, so the start date still applies.
            self.add_error("end", "The end date is before the start date.")
        return cleaned


def _decimal(label: str, **kwargs) -> django_filters.NumberFilter:
    return django_filters.NumberFilter(
        label=label,
        min_value=Decimal(0),
        max_digits=16,
        decimal_places=4,
        widget=forms.NumberInput(attrs={"min": "0", "step": "any", "inputmode": "decimal"}),
        **kwargs,
    )


class ExecutionFilter(django_filters.FilterSet):
    """Every filter of the table. Each method keeps to one indexed predicate where
    it can, because these run over millions of rows."""

    q = SearchFilter(
        label="Search",
        method="filter_search",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Id, error or summary",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    agent = django_filters.MultipleChoiceFilter(
        label="Agent", method="filter_agent", widget=SingleSelectList, distinct=False
    )
    version = django_filters.ModelChoiceFilter(
        label="Version",
        queryset=None,  # this workspace's, set per request
        method="filter_version",
        empty_label="All versions",
    )
    status = django_filters.MultipleChoiceFilter(
        label="Status",
        choices=STATUS_CHOICES,
        method="filter_status",
        widget=forms.CheckboxSelectMultiple,
        distinct=False,
    )
    start = django_filters.DateFilter(
        label="Start date",
        method="filter_start",
        widget=DateInput,
        error_messages={"invalid": "Enter the start date as YYYY-MM-DD."},
        validators=[validate_day],
    )
    end = django_filters.DateFilter(
        label="End date",
        method="filter_end",
        widget=DateInput,
        error_messages={"invalid": "Enter the end date as YYYY-MM-DD."},
        validators=[validate_day],
    )
    # An exact instant range, for links from the overview's charts (one bar, one
    # hour); the form carries them as hidden fields.
    after = django_filters.IsoDateTimeFilter(
        label="Created from",
        method="filter_after",
        widget=forms.HiddenInput,
        error_messages={"invalid": "Enter a time as ISO 8601, e.g. 2026-03-01T10:00:00Z."},
    )
    before = django_filters.IsoDateTimeFilter(
        label="Created before",
        method="filter_before",
        widget=forms.HiddenInput,
        error_messages={"invalid": "Enter a time as ISO 8601, e.g. 2026-03-01T11:00:00Z."},
    )
    # An error group from the overview (executions/overview/errors.py): the runs whose
    # normalized error is exactly this.
    error_group = django_filters.CharFilter(
        label="Error group",
        method="filter_error_group",
        widget=forms.HiddenInput,
        max_length=200,
    )
    # A tool or model call from the overview: the runs with such a step.
    step = django_filters.CharFilter(
        label="Step name", method="filter_step", widget=forms.HiddenInput, max_length=200
    )
    step_model = django_filters.CharFilter(
        label="Step model", method="filter_step_model", widget=forms.HiddenInput, max_length=200
    )
    batch = django_filters.ModelChoiceFilter(
        label="Batch",
        queryset=None,
        method="filter_batch",
        widget=forms.TextInput(attrs={"placeholder": "Batch id", "spellcheck": "false"}),
        error_messages={"invalid_choice": "There is no batch with this id in this workspace."},
    )
    schedule = django_filters.ModelChoiceFilter(
        label="Schedule",
        queryset=None,
        method="filter_schedule",
        empty_label="All schedules",
    )
    source = django_filters.ChoiceFilter(
        label="Source", choices=Source.choices, method="filter_source", empty_label="All sources"
    )
    meta = MetadataFilter(
        label="Metadata",
        method="filter_metadata",
        widget=forms.TextInput(attrs={"placeholder": "key=value", "spellcheck": "false"}),
    )
    min_duration = _decimal("Min duration (s)", method="filter_min_duration")
    min_cost = _decimal("Min cost ($)", method="filter_min_cost")
    min_credits = _decimal("Min credits", method="filter_min_credits")
    feedback = django_filters.ChoiceFilter(
        label="Feedback",
        choices=[(FEEDBACK_ANY, "Has feedback"), (FEEDBACK_CORRECTED, "Corrected")],
        method="filter_feedback",
        empty_label="Any",
    )

    tag = TagFilter(label="Tags", method="filter_tag", required=False)

    budget = django_filters.ChoiceFilter(
        label="Budget",
        choices=[(BUDGET_FLAGGED, "Over a soft limit"), (BUDGET_STOPPED, "Stopped by a limit")],
        method="filter_budget",
        empty_label="Any",
    )

    class Meta:
        form = ExecutionFilterForm
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, workspace: Workspace, **kwargs):
        self.workspace = workspace
        super().__init__(data, queryset, **kwargs)
        # Querysets and choices stay lazy: a request that neither renders the form
        # nor uses the filter never runs their queries.
        # A plain function, not a bound method: the form deep-copies its fields, and
        # copying a bound method would copy this whole FilterSet with it.
        self.filters["agent"].extra["choices"] = lambda: self._choices["agent"]
        # Only what a label needs: versions carry schemas and configs of any size.
        self.filters["version"].queryset = (
            AgentVersion.objects.filter(agent__workspace=workspace)
            .select_related("agent")
            .only("id", "version", "agent__name")
            .order_by("agent__name", "-created_at")
        )
        self.filters["batch"].queryset = Batch.objects.filter(workspace=workspace)
        self.filters["schedule"].queryset = (
            Schedule.objects.filter(workspace=workspace).only("id", "name").order_by("name")
        )

    @cached_property
    def _choices(self) -> dict[str, list[tuple[str, str]]]:
        return filter_choices(self.workspace)

    def choices_for(self, name: str) -> list[tuple[str, str]] | None:
        """The options of a drop-down drawn from the one choices query, if it has them."""
        return self._choices.get(name)

    def hidden_choices(self, name: str) -> set[str]:
        """Options drawn but hidden: with an agent chosen, the other agents' versions
        (the version already chosen stays, so a link that names one keeps it). They
        stay in the page so table.js can show them when the agent changes."""
        agent = (self.data.get("agent") or "").strip() if self.data else ""
        if name != "version" or not agent:
            return set()
        chosen = str(self.data.get("version") or "")
        prefix = f"{agent}:"
        return {
            key
            for key, label in self._choices.get("version", [])
            if key and key != chosen and not label.startswith(prefix)
        }

    @property
    def vendor(self) -> str:
        return connections[self.queryset.db].vendor

    # Each method below receives a value that has already validated.

    def filter_search(self, queryset: QuerySet, name, value):
        exact = full_uuid(value)
        if exact is not None:
            return queryset.filter(pk=exact)
        condition = Q()
        if len(value) >= SEARCH_MIN_CHARS:
            if queryset.model is ExecutionSearch:
                # Its document is already upper-cased: UPPER() only the value.
                condition = Q(document__contains=Upper(Value(value)))
            else:
                # icontains compiles to UPPER(col) LIKE UPPER(%s), which the trigram
                # indexes on upper(error) and upper(summary) serve on PostgreSQL.
                condition = Q(error__icontains=value) | Q(summary__icontains=value)
        bounds = id_prefix_range(value)
        if bounds is not None:
            condition |= Q(pk__gte=bounds[0], pk__lte=bounds[1])
        return queryset.filter(condition)

    def filter_agent(self, queryset, name, value):
        if not value:
            return queryset
        if len(value) == 1:
            return queryset.filter(agent_name=value[0])
        return queryset.filter(agent_name__in=value)

    def filter_version(self, queryset, name, value):
        return queryset.filter(agent_version=value)

    def filter_status(self, queryset, name, value):
        statuses = self.status_values(value)
        if statuses is None:
            return queryset
        if len(statuses) == 1:
            return queryset.filter(status=statuses[0])
        return queryset.filter(status__in=statuses)

    @staticmethod
    def status_values(value) -> list[str] | None:
        if not value:
            return None
        statuses = set()
        for v in value:
            statuses |= set(ACTIVE_STATUSES) if v == ACTIVE else {v}
        return sorted(str(s) for s in statuses)

    def filter_start(self, queryset, name, value):
        return queryset.filter(created_at__gte=local_midnight(value))

    def filter_end(self, queryset, name, value):
        # The end date is inclusive: everything before the next local midnight.
        return queryset.filter(created_at__lt=local_midnight(value + timedelta(days=1)))

    def filter_after(self, queryset, name, value):
        return queryset.filter(created_at__gte=value)

    def filter_before(self, queryset, name, value):
        return queryset.filter(created_at__lt=value)

    def filter_error_group(self, queryset, name, value):
        group = Func(F("error"), function="runboard_error_group", output_field=CharField())
        # error <> '' lets PostgreSQL use the partial index exec_ws_error_group.
        return queryset.exclude(error="").alias(_error_group=group).filter(_error_group=value)

    def filter_step(self, queryset, name, value):
        # With step_model too, both hold for the same step.
        steps = Step.objects.filter(execution=OuterRef("pk"), name=value)
        model = self.form.cleaned_data.get("step_model")
        if model:
            steps = steps.filter(model=model)
        return queryset.filter(Exists(steps))

    def filter_step_model(self, queryset, name, value):
        if self.form.cleaned_data.get("step"):
            return queryset  # filter_step matches the model on the same step
        steps = Step.objects.filter(execution=OuterRef("pk"), model=value)
        return queryset.filter(Exists(steps))

    def filter_batch(self, queryset, name, value):
        return queryset.filter(batch=value)

    def filter_schedule(self, queryset, name, value):
        return queryset.filter(schedule=value)

    def filter_source(self, queryset, name, value):
        return queryset.filter(source=value)

    def filter_metadata(self, queryset, name, value):
        key, wanted = value
        candidates: list = [wanted]
        typed = _json_scalar(wanted)
        if typed is not None:
            candidates.append(typed)
        if self.vendor == "postgresql":
            # @> is what the GIN (jsonb_path_ops) index on metadata serves.
            condition = Q()
            for candidate in candidates:
                condition |= Q(metadata__contains={key: candidate})
            return queryset.filter(condition)
        # SQLite has no JSON containment: compare the one key instead.
        queryset = queryset.alias(_meta_value=KeyTransform(key, "metadata"))
        condition = Q()
        for candidate in candidates:
            condition |= Q(_meta_value=candidate)
        return queryset.filter(condition)

    def filter_min_duration(self, queryset, name, value):
        return queryset.filter(duration_ms__gte=int(value * 1000))

    def filter_min_cost(self, queryset, name, value):
        return queryset.filter(cost_usd__gte=value)

    def filter_min_credits(self, queryset, name, value):
        return queryset.filter(credits__gte=value)

    def filter_tag(self, queryset, name, value):
        for tag in value:
            queryset = queryset.filter(
                Exists(
                    ExecutionTag.objects.filter(
                        workspace=self.workspace, name=tag, execution=OuterRef("pk")
                    )
                )
            )
        return queryset

    def filter_feedback(self, queryset, name, value):
        if value == FEEDBACK_CORRECTED:
            return queryset.filter(correction_count__gt=0)
        return queryset.filter(Q(correction_count__gt=0) | Q(note_count__gt=0))

    def filter_budget(self, queryset, name, value):
        # Few runs have a budget; the JSON key lookups read only theirs.
        if value == BUDGET_STOPPED:
            return queryset.filter(budget__has_key="stop")
        return queryset.filter(budget__flagged=True)

    # What the rest of the table needs to know about the validated filters.

    def applied(self) -> dict:
        """The filters that validated and are set, by name."""
        if not self.is_bound:
            return {}
        self.errors  # noqa: B018 -- validates, filling cleaned_data
        return {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "", [], ())}

    def counter_filters(self) -> dict | None:
        """The agent/status filters as arguments to counters.total(), when they are the
        only filters applied; None when the total needs a real count."""
        applied = self.applied()
        if set(applied) - {"agent", "status"}:
            return None
        return {
            "agent_names": applied.get("agent") or None,
            "statuses": self.status_values(applied.get("status")),
        }


def _json_scalar(text: str):
    """The number or boolean a metadata value may have been stored as, if any."""
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d{1,18}", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return None
