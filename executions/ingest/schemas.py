"""Request and response schemas of the JSON API (/api/v1/). They validate shape only;
what the values mean (agents, lifecycle, idempotency) is decided in services.py.

Over 500 lines on purpose: the API's schemas are declarations that the OpenAPI
document is generated from; one file is the whole contract of this door.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from executions import timestamps
from executions.lifecycle import UnknownStatus, parse_status
from executions.models import StepKind, StepStatus

INT32_MAX = 2_147_483_647
# Execution.cost_usd and Step.cost_usd hold 20 digits, 12 after the point.
COST_MAX = Decimal("99999999.999999999999")
CREDITS_MAX = Decimal("9999999999.9999")


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here instead of failing at the database.
    if "\x00" in value:
        raise ValueError("must not contain a NUL (\\u0000) character")
    return value


def _aware(value: datetime | None) -> datetime | None:
    # A timestamp without a zone is taken as UTC, the zone every runtime should send;
    # one that could be stored but never read back again is refused here.
    if value is None:
        return None
    try:
        return timestamps.checked(value)
    except timestamps.OutOfRange as exc:
        raise ValueError(str(exc)) from None


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(parse_status(value))
    except UnknownStatus as exc:
        raise ValueError(str(exc)) from None


Text = Annotated[str, AfterValidator(_no_nul)]


def limited(max_length: int) -> Any:
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(_no_nul)]


Timestamp = Annotated[datetime, AfterValidator(_aware)]
Status = Annotated[
    str,
    Field(
        description="pending, queued, running, awaiting_approval, completed, failed, timed_out, "
        "cancelled, rejected; also accepted: processing (= running), canceled, created "
        "(= pending), timeout."
    ),
    AfterValidator(_status),
]
Tokens = Annotated[int, Field(ge=0, le=INT32_MAX)]

STEP_KIND_ALIASES = {
    "thinking": StepKind.THOUGHT,
    "reasoning": StepKind.THOUGHT,
    "llm": StepKind.MODEL_CALL,
    "model": StepKind.MODEL_CALL,
    "tool": StepKind.TOOL_CALL,
    "browser": StepKind.ACTION,
    "chain": StepKind.BLOCK,
    "agent": StepKind.BLOCK,
    "span": StepKind.BLOCK,
}


STEP_KINDS = frozenset(StepKind.values)


def _step_kind(value: str) -> str:
    key = value.strip().lower()
    key = STEP_KIND_ALIASES.get(key, key)
    if key not in STEP_KINDS:
        valid = ", ".join([*StepKind.values, *STEP_KIND_ALIASES])
        raise ValueError(f"unknown step kind {value!r}; expected one of: {valid}")
    return key


class Strict(BaseModel):
    # A misspelt field is an error the caller wants to hear about, not a silent default.
    # Plain pydantic models (not ninja.Schema, which wraps every nested model to read
    # Django objects): a batch of a thousand steps validates several times faster.
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Responses are built as dicts by the views, so plain models validate them fastest."""


class Usage(Strict):
    prompt_tokens: Tokens | None = Field(None, description="Also accepted as input_tokens.")
    completion_tokens: Tokens | None = Field(None, description="Also accepted as output_tokens.")
    total_tokens: Tokens | None = Field(
        None, description="Defaults to prompt_tokens + completion_tokens."
    )

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (
                ("input_tokens", "prompt_tokens"),
                ("output_tokens", "completion_tokens"),
            ):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
        return data


class ExecutionFields(Strict):
    """What a runtime may report about an execution, at creation or later."""

    status: Status | None = None
    output: Any = None
    summary: Text | None = None
    error: Text | None = None
    failure_reason: Text | None = None
    usage: Usage | None = None
    cost: Annotated[Decimal, Field(ge=0, le=COST_MAX)] | None = Field(
        None, description="Total cost in USD."
    )
    credits: Annotated[Decimal, Field(ge=0, le=CREDITS_MAX)] | None = None
    metadata: dict[str, Any] | None = None
    session_id: limited(200) | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class ExecutionCreateIn(ExecutionFields):
    agent: limited(301) | None = Field(
        None,
        description="The agent as 'name:version', or a name with `version` beside it. "
        "An unknown agent or version is created on first use.",
        examples=["invoice-extractor:v1"],
    )
    name: limited(301) | None = Field(
        None, description="The same as `agent` (the spelling of seed SDKs)."
    )
    version: limited(100) | None = None
    input: dict[str, Any] | None = Field(
        None, description="Validated against the version's input_schema when it has one."
    )
    inputs: dict[str, Any] | None = Field(None, description="The same as `input`.")
    priority: Literal["low", "normal", "high"] = "normal"
    batch: UUID | None = Field(
        None,
        description="Join this batch; a batch id not seen before creates the batch.",
    )
    batch_name: limited(200) | None = None
    budget: dict[str, Any] | None = Field(
        None,
        description="Limits for this run, any subset: cost (USD), tokens, steps, seconds; "
        '"soft" limits that only flag the run; "loop" repeats that stop it. Overrides the '
        "version's config budget key by key. A hard limit terminates the run.",
        examples=[{"cost": 0.5, "tokens": 200000, "steps": 300, "seconds": 900}],
    )
    idempotency_key: limited(200) | None = Field(
        None,
        description="Also accepted as the Idempotency-Key header. A retried create with "
        "the same key returns the first execution and creates nothing.",
    )

    @model_validator(mode="after")
    def _one_agent_and_one_input(self):
        if self.agent and self.name and self.agent != self.name:
            raise ValueError("give the agent as `agent` or as `name`, not both")
        if not (self.agent or self.name):
            raise ValueError("`agent` is required, as 'name:version' or a name")
        if self.input is not None and self.inputs is not None:
            raise ValueError("give the input as `input` or as `inputs`, not both")
        return self

    @property
    def agent_ref(self) -> str:
        return self.agent or self.name or ""

    @property
    def input_value(self) -> dict:
        return self.input if self.input is not None else (self.inputs or {})


class ExecutionUpdateIn(ExecutionFields):
    pass


class StepIn(Strict):
    span_id: limited(64) | None = Field(
        None, description="The runtime's id for the step; a step re-sent with it is updated."
    )
    parent_span_id: limited(64) | None = None
    sequence: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = Field(
        None, description="Order in the execution; assigned after the last one when absent."
    )
    parent_sequence: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    kind: Annotated[str, AfterValidator(_step_kind)] = Field(
        StepKind.OTHER,
        description="thought, model_call, tool_call, action, block, guardrail, approval, other "
        "(also: thinking, reasoning, llm, tool, browser, chain, agent, span)",
    )
    name: limited(500) = ""
    status: Literal[tuple(StepStatus.values)] = StepStatus.COMPLETED  # type: ignore[valid-type]
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    duration_ms: Annotated[int, Field(ge=0, le=2**62)] | None = None
    input: Any = None
    output: Any = None
    error: Text = ""
    model: limited(200) = ""
    prompt_tokens: Tokens = 0
    completion_tokens: Tokens = 0
    cost: Annotated[Decimal, Field(ge=0, le=COST_MAX)] | None = Field(
        None, description="USD; computed from the model price table when absent."
    )
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _times_in_order(self):
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.sequence is not None and self.sequence == self.parent_sequence:
            raise ValueError("a step cannot be its own parent (parent_sequence = sequence)")
        if self.span_id and self.span_id == self.parent_span_id:
            raise ValueError("a step cannot be its own parent (parent_span_id = span_id)")
        return self


class StepsIn(Strict):
    """One step, a list of steps, or {"steps": [...]}."""

    steps: list[StepIn] = Field(..., min_length=1, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _accept_one_or_many(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"steps": data}
        if isinstance(data, dict) and "steps" not in data:
            return {"steps": [data]}
        return data


class FileUploadForm(Strict):
    execution_id: UUID | None = None
    kind: Literal["screenshot", "image", "video", "document", "code", "file"] | None = None
    step_span_id: limited(64) | None = None
    step_sequence: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    bounding_boxes: Text | None = Field(
        None, description='JSON list: [{"label", "x", "y", "width", "height", "confidence"}]'
    )


# Responses


class TokenUsage(Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ExecutionCreatedOut(Out):
    execution_id: UUID
    id: UUID
    agent_id: int | None
    agent_version_id: int | None
    agent: str
    status: str
    created_at: datetime
    inputs: Any
    idempotency_key: str | None
    url: str


class ExecutionSummaryOut(Out):
    id: UUID
    execution_id: UUID
    agent_id: int | None
    agent_version_id: int | None
    agent: str
    agent_name: str
    version: str
    workspace_id: int
    status: str
    priority: str
    source: str
    batch_id: UUID | None
    session_id: str
    trace_id: str
    metadata: Any
    token_usage: TokenUsage
    cost: float
    credits: float | None
    step_count: int
    duration_ms: int | None
    processing_time: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    url: str


class ExecutionOut(ExecutionSummaryOut):
    user_id: int | None
    idempotency_key: str | None
    input: Any
    output: Any
    response: Any = Field(description="The same as output (seed 002's name).")
    summary: str
    error: str
    failure_reason: str
    budget: dict[str, Any] | None = Field(
        None,
        description="The run's budget: limits, soft limits, loop repeats, and once passed "
        "its flags and stop (docs/alerts.md). Null for a run without one.",
    )
    corrected_output: Any = Field(
        None, description="With ?corrected=true: the output with reviewers' corrections applied."
    )


class WaitInfo(Out):
    ended: bool
    timed_out: bool
    waited_ms: int
    timeout_seconds: float


class ExecutionWaitOut(ExecutionOut):
    wait: WaitInfo


class ExecutionPageOut(Out):
    data: list[ExecutionSummaryOut]
    page: int
    limit: int
    has_more: bool
    next: str | None = Field(
        None, description="The next page's URL (a cursor, any depth at the same cost)."
    )
    prev: str | None = Field(None, description="The previous page's URL, by cursor.")
    total: int | None = Field(
        description="Exact when it is cheap to know (no filters, or agent/status only); "
        "otherwise null: use has_more to page on."
    )


class StepOut(Out):
    id: int
    sequence: int
    span_id: str | None
    parent_span_id: str
    parent_id: int | None
    kind: str
    name: str
    status: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    created: bool


class StopOut(Out):
    status: str
    reason: str
    by: str
    limit: str | None = None
    step: int | None = None


class StepsAppendOut(Out):
    execution_id: UUID
    created: int
    updated: int
    unchanged: int
    step_count: int
    token_usage: TokenUsage
    cost: float
    steps: list[StepOut]
    stop: StopOut | None = Field(
        None, description="Set when the run is stopped (a budget, a cancel): stop working on it."
    )


class FileOut(Out):
    id: UUID
    file_id: UUID
    object_id: UUID
    name: str
    size: int
    content_type: str
    kind: str
    execution_id: UUID | None
    url: str
    public_url: str
    created_at: datetime


class ErrorOut(Out):
    detail: str


class FieldError(Out):
    field: str
    message: str


class ValidationErrorOut(Out):
    detail: str
    errors: list[FieldError]


class StepDetailOut(Out):
    id: int
    sequence: int
    span_id: str | None
    parent_span_id: str
    parent_id: int | None
    kind: str
    name: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    input: Any
    output: Any
    error: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    attributes: Any


class StepPageOut(Out):
    data: list[StepDetailOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


# Server-sent events of GET /executions/{id}/stream: the JSON on each `data:` line. Not a
# response body ninja validates (the stream is text/event-stream): the document carries
# the schema beside the stream's media type, and a test checks real frames against it.


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThinkingEvent(_Event):
    type: Literal["thinking"]
    content: str
    step: int


class ToolStartEvent(_Event):
    type: Literal["tool_start"]
    name: str
    tool_call_id: str
    step: int
    input: Any


class ToolEndEvent(_Event):
    type: Literal["tool_end"]
    name: str
    tool_call_id: str
    step: int
    output: Any
    status: str
    error: str | None = None


class ContentEvent(_Event):
    type: Literal["content"]
    content: str
    model: str
    step: int


class TokenUsage(_Event):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class DoneEvent(_Event):
    type: Literal["done"]
    execution_id: UUID
    status: str
    output: Any
    token_usage: TokenUsage
    cost: float
    duration_ms: int | None


class ErrorEvent(_Event):
    type: Literal["error"]
    execution_id: UUID
    status: str
    error: str


StreamEvent = Annotated[
    ThinkingEvent | ToolStartEvent | ToolEndEvent | ContentEvent | DoneEvent | ErrorEvent,
    Field(discriminator="type"),
]
