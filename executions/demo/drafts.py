"""The shape of one demo run before it meets the database.

A builder writes the happy path of a run as a Draft: its input, output and every step
it would take, plus where it can fail and where it can stop for approval. realise.py
then cuts the draft to the status the plan gave the run, so the same builder yields
completed, failed, running or awaiting-approval runs that all look right.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from typing import Any

from .catalog import cost_of, credits_of


@dataclass
class StepDraft:
    key: str
    kind: str
    name: str
    duration_ms: int
    parent: str | None = None
    input: Any = None
    output: Any = None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attributes: dict = field(default_factory=dict)
    # (site, page, highlighted element, typed values): the screenshot taken after this step.
    screenshot: tuple | None = None

    @property
    def cost(self) -> Decimal:
        if not self.model:
            return Decimal(0)
        return cost_of(self.model, self.prompt_tokens, self.completion_tokens)

    @property
    def credits(self) -> Decimal:
        if not self.model:
            # Tools are billed a flat tenth of a credit per call.
            return Decimal("0.1000") if self.kind in {"tool_call", "action"} else Decimal(0)
        return credits_of(self.model, self.prompt_tokens + self.completion_tokens)


@dataclass
class ArtifactDraft:
    kind: str
    name: str
    content_type: str
    # Called only for runs that are actually inserted: rendering PNGs is the slow part.
    render: Callable[[], bytes]
    bounding_boxes: list = field(default_factory=list)
    step: str | None = None


@dataclass
class Failure:
    step: str
    error: str
    reason: str
    # What the browser showed when it failed, if that differs from the happy path.
    screenshot: tuple | None = None


@dataclass
class Draft:
    input: dict
    output: dict | None
    summary: str
    steps: list[StepDraft] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    artifacts: list[ArtifactDraft] = field(default_factory=list)
    approval_step: str | None = None
    approval_request: dict | None = None
    session_id: str = ""

    def step(self, kind: str, name: str, duration_ms: int, **kwargs) -> str:
        key = f"s{len(self.steps) + 1}"
        self.steps.append(
            StepDraft(key=key, kind=kind, name=name, duration_ms=duration_ms, **kwargs)
        )
        return key

    def model_call(
        self,
        rng: Random,
        *,
        model: str,
        name: str,
        prompt: list[dict],
        response: dict,
        prompt_tokens: tuple[int, int],
        completion_tokens: tuple[int, int],
        parent: str | None = None,
        kind: str = "model_call",
    ) -> str:
        pt = rng.randint(*prompt_tokens)
        ct = rng.randint(*completion_tokens)
        # Latency grows with the tokens generated, as it does with real models.
        duration = 350 + ct * rng.randint(12, 30) + rng.randint(0, 600)
        provider = "anthropic" if model.startswith("claude") else "openai"
        return self.step(
            kind,
            name,
            duration,
            parent=parent,
            model=model,
            prompt_tokens=pt,
            completion_tokens=ct,
            input={"messages": prompt},
            output=response,
            attributes={
                "gen_ai.system": provider,
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": pt,
                "gen_ai.usage.output_tokens": ct,
            },
        )

    def tool_call(
        self,
        rng: Random,
        tool: str,
        arguments: dict,
        result: Any,
        duration: tuple[int, int],
        parent: str | None = None,
    ) -> str:
        return self.step(
            "tool_call",
            tool,
            rng.randint(*duration),
            parent=parent,
            input=arguments,
            output=result,
            attributes={"tool.name": tool},
        )

    def fail(self, step: str, error: str, reason: str, screenshot: tuple | None = None) -> None:
        self.failures.append(Failure(step, error, reason, screenshot))
