"""What the reference benchmark data set is made of, prepared for fast COPY.

Speed comes from doing per row only what must differ per row. Everything else is
built once: each agent has PROFILES precomputed step sequences (durations, tokens,
cost, input and output already encoded as binary COPY fields), and an execution picks
a profile. Its totals (tokens, cost, duration) are then the profile's sums, which also
keeps every execution's totals exactly equal to its steps'. Pools hold the per-agent
inputs, outputs and summaries of executions, already escaped for COPY text.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import pgbinary

PROFILES = 512
DAYS = 90
DAY_MS = 86_400_000
NULL = "\\N"


def esc(text: str) -> str:
    """Escape text for COPY's text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def jtext(value) -> str:
    return esc(json.dumps(value, separators=(",", ":")))


class Clock:
    """Formats epoch milliseconds as timestamptz text, with the slow parts looked up."""

    def __init__(self, first_ms: int, last_ms: int):
        self.day0 = first_ms // DAY_MS
        days = last_ms // DAY_MS - self.day0 + 2
        self.days = [
            datetime.fromtimestamp((self.day0 + d) * DAY_MS / 1000, UTC).strftime("%Y-%m-%d ")
            for d in range(days)
        ]
        self.minutes = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
        self.millis = [f"{s // 1000:02d}.{s % 1000:03d}+00" for s in range(60_000)]

    def __call__(self, ms: int) -> str:
        day, rest = divmod(ms, DAY_MS)
        minute, milli = divmod(rest, 60_000)
        return self.days[day - self.day0] + self.minutes[minute] + self.millis[milli]


# A family is a step template: (kind, name, index of the parent step or None).
FAMILIES = {
    "document": [
        ("block", "Load document", None),
        ("tool_call", "download_file", 0),
        ("tool_call", "ocr", 0),
        ("model_call", "extract fields", None),
        ("guardrail", "validate output against schema", None),
        ("block", "Post-process", None),
        ("tool_call", "normalise_dates", 5),
        ("tool_call", "match_vendor", 5),
        ("model_call", "summarise", 5),
        ("tool_call", "post_to_erp", None),
    ],
    "chat": [
        ("model_call", "chat", None),
        ("tool_call", "lookup_customer", None),
        ("tool_call", "lookup_order", None),
        ("model_call", "chat", None),
        ("block", "Resolve", None),
        ("tool_call", "issue_refund", 4),
        ("tool_call", "send_email", 4),
        ("guardrail", "pii filter", None),
        ("model_call", "chat", None),
        ("tool_call", "close_ticket", None),
    ],
    "browser": [
        ("block", "Log in", None),
        ("thought", "thought", 0),
        ("action", "type Email", 0),
        ("action", "click Sign in", 0),
        ("block", "Navigate", None),
        ("thought", "thought", 4),
        ("action", "click Invoices", 4),
        ("block", "Extract", None),
        ("action", "extract Amount due", 7),
        ("action", "download PDF", 7),
    ],
}

# name, family, model, how much of the traffic it gets, number of versions
AGENTS = [
    ("invoice-extractor", "document", "gpt-4o", 14, 3),
    ("support-agent", "chat", "claude-sonnet-4", 13, 2),
    ("receipt-reader", "document", "gpt-4o", 10, 2),
    ("email-triage", "chat", "gpt-4o-mini", 9, 2),
    ("web-browser", "browser", "claude-sonnet-4", 7, 3),
    ("contract-reviewer", "document", "claude-sonnet-4", 6, 1),
    ("claims-processor", "document", "gpt-4o", 6, 2),
    ("lead-enricher", "browser", "gpt-4o-mini", 5, 1),
    ("kyc-verifier", "document", "gpt-4o", 5, 2),
    ("meeting-summarizer", "chat", "gemini-2.0-flash", 4, 1),
    ("po-matcher", "document", "gpt-4o-mini", 4, 1),
    ("resume-screener", "document", "claude-3-5-haiku", 3, 2),
    ("translation-agent", "chat", "gpt-4o-mini", 3, 1),
    ("research-assistant", "browser", "o3-mini", 3, 2),
    ("code-reviewer", "chat", "o3-mini", 2, 1),
    ("onboarding-bot", "chat", "claude-3-5-haiku", 2, 1),
    ("daily-sales-report", "chat", "gpt-4o-mini", 1, 1),
    ("doc-classifier", "document", "gemini-2.0-flash", 1, 1),
    ("churn-predictor", "chat", "gpt-4o-mini", 1, 1),
    ("price-monitor", "browser", "gemini-2.0-flash", 1, 1),
]
# USD per million tokens (input, output)
PRICES = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "o3-mini": (1.1, 4.4),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "gemini-2.0-flash": (0.1, 0.4),
}
ERRORS = {
    "document": [
        ("OCRError: page {n} is blank or unreadable (mean confidence 0.1{d})", "Unreadable scan."),
        (
            "HTTPError: 403 Forbidden while fetching https://files.bench.example/doc-{n}.pdf",
            "The document link had expired.",
        ),
        (
            "ValidationError: /totals/total: 'see page {n}' is not of type 'number'",
            "The model returned a total that is not a number.",
        ),
        (
            "RateLimitError: 429 Too Many Requests: limit 30000 TPM, used 29{d}12, requested {n}",
            "The model provider rate-limited us.",
        ),
    ],
    "chat": [
        (
            "OrderServiceError: 504 Gateway Timeout from orders.internal after 100{d}2 ms",
            "The order service did not answer in time.",
        ),
        (
            "anthropic.APIStatusError: Error code: 529 - overloaded_error (request req_{n})",
            "The model provider was overloaded.",
        ),
        (
            "GuardrailViolation: the reply contained a card number (rule pci-{d})",
            "The reply was blocked by the PII filter.",
        ),
    ],
    "browser": [
        (
            "CaptchaDetected: https://portal-{d}.example/login shows a CAPTCHA",
            "The portal asked for a CAPTCHA.",
        ),
        (
            "TimeoutError: element 'Download PDF' was not clickable after 30000 ms",
            "The download button never became clickable.",
        ),
        ("NoMatchingElement: no unpaid invoice listed on page {n}", "Nothing to download."),
    ],
}
CUSTOMERS = 5000
ENVIRONMENTS = [("production", 85), ("staging", 12), ("development", 3)]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2", "sa-east-1"]
EXPERIMENTS = ["prompt-v2-ab", "temperature-0", "long-context", "tool-choice-auto"]


def _step_io(rng: random.Random, family: str, kind: str, name: str, model: str):
    n = rng.randint(1000, 99999)
    if kind == "model_call" or kind == "thought":
        return (
            {"messages": [{"role": "user", "content": f"{name} for item {n}"}], "model": model},
            {"role": "assistant", "content": f"Done: {name} {n}, confidence 0.{n % 97:02d}"},
        )
    if kind == "tool_call":
        return ({"id": f"{family[:3]}-{n}"}, {"ok": True, "took_ms": n % 900, "items": n % 7})
    if kind == "action":
        return ({"action": name.split()[0], "element": name}, {"ok": True, "url": f"/p/{n}"})
    if kind == "guardrail":
        return ({"rule": name}, {"passed": True})
    return ({"block": name}, None)


@dataclass
class Profile:
    """One precomputed way an agent's run can go: its steps, ready to write.

    Steps are written in binary COPY format (pgbinary.py); `blobs` hold, per step, every
    field after the timestamps for a completed step, so a row costs one struct.pack.
    """

    offsets: list[int]  # leaf boundaries, ms from the start
    blobs: list[bytes]
    inputs: list[bytes]  # per step: the input field, for a step that did not finish
    prompt: int = 0
    completion: int = 0
    cost: float = 0.0
    last_prompt: int = 0  # the last step's share, for runs that stop there
    last_completion: int = 0
    last_cost: float = 0.0


@dataclass
class AgentProfile:
    name: str
    family: str
    model: str
    kinds: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # per step: "" unless it calls a model
    attributes: list[bytes] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, end) boundary
    parents: list[int] = field(default_factory=list)  # steps back to the parent, 0 = root
    tools: int = 0
    profiles: list[Profile] = field(default_factory=list)


def build_profiles(steps: int, seed: int) -> list[AgentProfile]:
    rng = random.Random(seed)
    out = []
    completed = pgbinary.text("completed")
    no_error = pgbinary.text("")
    zero_cost = pgbinary.numeric(0, 6)
    for name, family, model, _, _ in AGENTS:
        template = FAMILIES[family]
        plan = []
        for k in range(steps):
            kind, step_name, parent = template[k % len(template)]
            base = (k // len(template)) * len(template)
            plan.append((kind, step_name, None if parent is None else base + parent))
        # The tree is the same for every profile: which steps are leaves, which leaves
        # each block spans, and the fields that never vary.
        children = {p for _, _, p in plan if p is not None}
        leaves = [k for k in range(steps) if k not in children]
        position = {k: n for n, k in enumerate(leaves)}
        agent = AgentProfile(name=name, family=family, model=model)
        for k, (kind, step_name, parent) in enumerate(plan):
            if k in position:
                agent.spans.append((position[k], position[k] + 1))
            else:
                subtree = [position[j] for j in leaves if _descends(plan, j, k)]
                agent.spans.append((subtree[0], subtree[-1] + 1) if subtree else (0, 0))
            uses_model = kind in {"model_call", "thought"}
            agent.kinds.append(kind)
            agent.names.append(step_name)
            agent.models.append(model if uses_model else "")
            agent.parents.append(0 if parent is None else k - parent)
            attrs = {"tool.name": step_name} if kind == "tool_call" else {}
            agent.attributes.append(
                pgbinary.jsonb({"gen_ai.request.model": model} if uses_model else attrs)
            )
        agent.tools = sum(kind in {"tool_call", "action"} for kind in agent.kinds)
        heads = [
            pgbinary.int4(k + 1) + pgbinary.text(agent.kinds[k]) + pgbinary.text(agent.names[k])
            for k in range(steps)
        ]
        variants = []
        for kind, step_name, _ in plan:
            ios = [_step_io(rng, family, kind, step_name, model) for _ in range(16)]
            variants.append([(pgbinary.jsonb(i), pgbinary.jsonb(o)) for i, o in ios])
        price_in, price_out = PRICES[model]
        for p in range(PROFILES):
            offsets = [0]
            for k in leaves:
                if agent.models[k]:
                    duration = int(rng.lognormvariate(7.3, 0.6))
                elif agent.kinds[k] == "guardrail":
                    duration = rng.randint(2, 40)
                else:
                    duration = int(rng.lognormvariate(6.0, 0.9))
                offsets.append(offsets[-1] + duration)
            profile = Profile(offsets=offsets, blobs=[], inputs=[])
            for k in range(steps):
                pt = ct = 0
                cost = 0.0
                if agent.models[k]:
                    pt, ct = rng.randint(400, 4000), rng.randint(20, 800)
                    cost = (pt * price_in + ct * price_out) / 1e6
                b0, b1 = agent.spans[k]
                step_input, step_output = variants[k][p % 16]
                profile.inputs.append(step_input)
                profile.blobs.append(
                    b"".join(
                        [
                            heads[k],
                            completed,
                            pgbinary.int8(offsets[b1] - offsets[b0]),
                            step_input,
                            step_output,
                            no_error,
                            pgbinary.text(agent.models[k]),
                            pgbinary.int4(pt),
                            pgbinary.int4(ct),
                            pgbinary.numeric(cost, 6) if cost else zero_cost,
                            agent.attributes[k],
                        ]
                    )
                )
                profile.prompt += pt
                profile.completion += ct
                profile.cost += cost
                if k == steps - 1:
                    profile.last_prompt, profile.last_completion, profile.last_cost = pt, ct, cost
            agent.profiles.append(profile)
        out.append(agent)
    return out


def _descends(plan, step: int, ancestor: int) -> bool:
    parent = plan[step][2]
    while parent is not None:
        if parent == ancestor:
            return True
        parent = plan[parent][2]
    return False


def last_chain(agents: list[AgentProfile], steps: int) -> list[frozenset[int]]:
    """Per agent: the last step and the blocks it sits in, which end the way the run did."""
    chains = []
    for agent in agents:
        k, chain = steps - 1, {steps - 1}
        while agent.parents[k]:
            k -= agent.parents[k]
            chain.add(k)
        chains.append(frozenset(chain))
    return chains


DOCUMENT_TYPES = ["invoice", "receipt", "contract", "claim_form", "id_card", "purchase_order"]
CHANNELS = ["email", "chat", "web", "whatsapp", "slack"]
INTENTS = ["order status", "refund", "address change", "complaint"]
SUMMARY_WORDS = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell",
    "Soylent", "Vandelay", "Nordic", "Cascade", "Atlas", "Lumen", "Summit", "Porto", "Brightline",
]  # fmt: skip


class Pools:
    """Per-agent pools of inputs, outputs and summaries, and the small per-row choices."""

    def __init__(self, rng: random.Random, agents: list[AgentProfile]):
        self.inputs, self.outputs, self.summaries = [], [], []
        for agent in agents:
            inputs, outputs, summaries = [], [], []
            for n in range(64):
                ref = rng.randint(10_000, 999_999)
                if agent.family == "document":
                    inputs.append(
                        jtext(
                            {
                                "file": f"https://files.bench.example/{agent.name}/{ref}.pdf",
                                "language": "en",
                            }
                        )
                    )
                    outputs.append(
                        jtext(
                            {
                                "document_number": f"D-{ref}",
                                "vendor": {"name": rng.choice(SUMMARY_WORDS) + " Ltd"},
                                "line_items": [
                                    {
                                        "description": f"Item {j}",
                                        "amount": round(rng.uniform(5, 900), 2),
                                    }
                                    for j in range(1 + n % 4)
                                ],
                                "totals": {
                                    "total": round(rng.uniform(20, 5000), 2),
                                    "currency": "EUR",
                                },
                            }
                        )
                    )
                elif agent.family == "chat":
                    inputs.append(
                        jtext({"message": f"Where is my order NW-{ref}?", "language": "en"})
                    )
                    outputs.append(
                        jtext(
                            {"reply": f"Order NW-{ref} arrives tomorrow.", "intent": "order_status"}
                        )
                    )
                else:
                    inputs.append(
                        jtext(
                            {
                                "url": f"https://portal-{n}.example/login",
                                "goal": "Download the newest invoice",
                            }
                        )
                    )
                    outputs.append(
                        jtext(
                            {
                                "extracted": {"amount_due": round(rng.uniform(20, 5000), 2)},
                                "final_url": f"https://portal-{n}.example/invoices/{ref}",
                            }
                        )
                    )
            for _ in range(256):
                who = rng.choice(SUMMARY_WORDS)
                ref = rng.randint(1000, 99999)
                if agent.family == "document":
                    kind, amount = rng.choice(DOCUMENT_TYPES), rng.uniform(20, 5000)
                    summary = f"{who} {kind} D-{ref}: EUR {amount:,.2f}"
                elif agent.family == "chat":
                    summary = f"{rng.choice(INTENTS)} for {who} order NW-{ref}"
                else:
                    summary = f"Downloaded INV-{ref} from {who.lower()} portal"
                summaries.append(esc(summary))
            self.inputs.append(inputs)
            self.outputs.append(outputs)
            self.summaries.append(summaries)
        self.errors = {
            family: [
                (
                    error.format(n=rng.randint(1, 99999), d=rng.randint(0, 9)),
                    reason,
                )
                for error, reason in (messages * 64)[:64]
            ]
            for family, messages in ERRORS.items()
        }
        headers = '{"Authorization":"Bearer [redacted]","Content-Type":"application/json"}'

        def request(path: str) -> tuple[str, str, str]:
            return (
                f'{{"method":"POST","path":"{path}","headers":{headers},"body":{{"agent":"',
                '","input":',
                "}}",
            )

        self.requests = {
            "api": request("/api/v1/executions"),
            "batch": request("/api/v1/batches"),
            "rerun": request("/api/v1/executions"),
            "dashboard": request("/agents/execute"),
            "otlp": (
                '{"method":"POST","path":"/v1/traces",'
                '"headers":{"Authorization":"Bearer [redacted]"},"agent":"',
                '","input":',
                "}",
            ),
            "schedule": None,
        }
        self.priority = ["1"] * 15 + ["0"] * 2 + ["2"] * 3
        self.approval = jtext(
            {
                "action": "issue_refund",
                "amount": 189.0,
                "currency": "EUR",
                "policy": "Refunds over 100 EUR need a person's approval.",
            }
        )
        self.paths = ["/totals/total", "/line_items/0/amount", "/vendor/name", "/document_number"]
        self.envs = [e for e, w in ENVIRONMENTS for _ in range(w)]

    def request(self, source: str, label: str, input_text: str) -> str:
        parts = self.requests[source]
        if parts is None:
            return "{}"  # a schedule fired it: no HTTP request
        return f"{parts[0]}{label}{parts[1]}{input_text}{parts[2]}"

    def metadata(self, i: int, family: str, rand) -> str:
        customer = int(CUSTOMERS * rand() ** 2.5)
        extra = ""
        if family == "chat":
            extra = f',"channel":"{CHANNELS[int(rand() * 5)]}"'
            if rand() < 0.02:
                extra += f',"ticket_id":"ZD-{i}"'
        elif family == "document":
            extra = f',"document_type":"{DOCUMENT_TYPES[int(rand() * 6)]}"'
        roll = rand()
        if roll < 0.05:
            extra += f',"experiment":"{EXPERIMENTS[int(rand() * 4)]}"'
        elif roll > 0.99:
            extra += ',"priority_customer":true'
        return (
            f'{{"customer":"cust-{customer:04d}","environment":"{self.envs[int(rand() * 100)]}",'
            f'"region":"{REGIONS[int(rand() * 6)]}"{extra}}}'
        )

    def session(self, family: str, rand) -> str:
        return f"sess-{int(rand() * 200_000)}" if family == "chat" else ""
