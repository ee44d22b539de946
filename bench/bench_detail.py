"""Detail page speed on a big run: 10,000 steps and a 1 MB output. Prints figures; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_detailbench \
        .venv/bin/python bench/bench_detail.py [--runs 30]

Targets (issue 4): server time of the first paint (the Overview, the page a link
opens) median <= 100 ms; one step card expanded with a 1 MB payload (the htmx
request behind "Input & output") <= 150 ms. Server time is measured in process
through Django's test client, so it covers middleware, queries, the view and the
templates, and leaves out the network and the browser.

The database in DATABASE_URL (SQLite when unset) is migrated and the bench run is
created once, then reused: run it again and it measures straight away.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import logged_in_client, print_end, print_start, setup

# The bench run's screenshots are files: keep them out of the project's media folder.
os.environ.setdefault("MEDIA_ROOT", "/tmp/runboard-detailbench-media")
setup(require_postgres=False)

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from agents.models import Agent, AgentVersion, Membership, Role, Workspace  # noqa: E402
from executions import counters  # noqa: E402
from executions.detail.rendering import DEFAULT_MAX_LINES  # noqa: E402
from executions.detail.selectors import STEP_PAGE_SIZE  # noqa: E402
from executions.models import (  # noqa: E402
    Artifact,
    ArtifactKind,
    Execution,
    Status,
    Step,
    StepKind,
    StepStatus,
)

TRACE = "detail-bench-10k"
STEPS = 10_000
BIG_STEP = 5  # on the first page, so the first paint also carries it
TIMELINE_AFTER = 5000  # a page from the middle of the timeline


def megabyte_json(seed: str) -> dict:
    """About 1 MB of realistic JSON: line items with nested fields."""
    rows = [
        {
            "line": i,
            "description": f"{seed} item {i} — recycled paper, A4, 80 g/m², 5 reams",
            "quantity": i % 17 + 1,
            "unit_price": round(3.75 + i % 11, 2),
            "tax": {"rate": 0.21, "amount": round((i % 17 + 1) * 0.79, 2)},
            "tags": ["office", "paper", f"batch-{i % 40}"],
        }
        for i in range(5200)
    ]
    return {"invoice_number": "INV-BENCH", "line_items": rows, "notes": "x" * 2000}


def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (960, 600), (240, 242, 245)).save(buffer, "PNG")
    return buffer.getvalue()


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def build() -> Execution:
    existing = Execution.objects.filter(trace_id=TRACE).first()
    if existing is not None:
        return existing
    print("Creating the bench run (10,000 steps, 1 MB output)…", flush=True)
    with transaction.atomic():
        workspace, _ = Workspace.objects.get_or_create(
            slug="detail-bench", defaults={"name": "Bench"}
        )
        user, _ = get_user_model().objects.get_or_create(username="detail-bench")
        Membership.objects.get_or_create(
            user=user, workspace=workspace, defaults={"role": Role.ADMIN}
        )
        agent, _ = Agent.objects.get_or_create(workspace=workspace, name="web-browser")
        version, _ = AgentVersion.objects.get_or_create(
            agent=agent, version="v1", defaults={"config": {"model": "claude-sonnet-4"}}
        )
        start = timezone.now() - timedelta(hours=2)
        execution = Execution.objects.create(
            workspace=workspace,
            agent=agent,
            agent_version=version,
            agent_name=agent.name,
            version_name=version.version,
            status=Status.COMPLETED,
            trace_id=TRACE,
            input={"url": "https://portal.example/login", "goal": "Download every invoice"},
            output=megabyte_json("output"),
            summary="Downloaded **10,000** things.",
            metadata={"customer": "acme"},
            created_at=start,
            started_at=start,
            completed_at=start + timedelta(minutes=90),
            duration_ms=90 * 60 * 1000,
            step_count=STEPS,
            total_tokens=12_000_000,
            cost_usd=Decimal("41.5"),
            credits=Decimal("1200"),
        )
        counters.count_created([execution])
        kinds = [StepKind.THOUGHT, StepKind.MODEL_CALL, StepKind.TOOL_CALL, StepKind.ACTION]
        blocks = []
        for seq in range(1, STEPS + 1, 10):
            blocks.append(
                Step(
                    execution=execution,
                    sequence=seq,
                    kind=StepKind.BLOCK,
                    name=f"Block {seq // 10 + 1}",
                    started_at=start + timedelta(milliseconds=seq * 500),
                    duration_ms=4500,
                    input={"block_type": "navigation"},
                )
            )
        Step.objects.bulk_create(blocks, batch_size=1000)
        by_seq = {b.sequence: b for b in Step.objects.filter(execution=execution)}
        children = []
        for seq in range(1, STEPS + 1):
            if seq % 10 == 1:
                continue
            kind = kinds[seq % 4]
            payload_in = {
                "messages": [{"role": "user", "content": f"What next after step {seq}?" * 4}]
            }
            payload_out = {
                "thought": f"Step {seq}: the page shows the invoice list; click next." * 2
            }
            if seq == BIG_STEP:
                payload_in, payload_out = megabyte_json("input"), megabyte_json("step")
            children.append(
                Step(
                    execution=execution,
                    parent=by_seq[seq - (seq - 1) % 10],
                    sequence=seq,
                    kind=kind,
                    name=f"{kind} {seq}",
                    status=StepStatus.COMPLETED,
                    started_at=start + timedelta(milliseconds=seq * 500),
                    duration_ms=300 + seq % 700,
                    model="claude-sonnet-4" if kind == StepKind.MODEL_CALL else "",
                    prompt_tokens=1500 if kind == StepKind.MODEL_CALL else 0,
                    completion_tokens=120 if kind == StepKind.MODEL_CALL else 0,
                    cost_usd=Decimal("0.0063") if kind == StepKind.MODEL_CALL else 0,
                    input=payload_in,
                    output=payload_out,
                    attributes={"gen_ai.system": "anthropic"},
                )
            )
        Step.objects.bulk_create(children, batch_size=1000)
        # A screenshot for every 20th action: the timeline shows thumbnails.
        png = _png()
        actions = Step.objects.filter(execution=execution, kind=StepKind.ACTION).order_by(
            "sequence"
        )
        for step in list(actions)[::20]:
            artifact = Artifact(
                workspace=workspace,
                execution=execution,
                step=step,
                kind=ArtifactKind.SCREENSHOT,
                name=f"step-{step.sequence}.png",
                content_type="image/png",
                size=len(png),
            )
            artifact.file.save(artifact.name, ContentFile(png), save=False)
            artifact.save()
    if connection.vendor == "postgresql":
        # What autovacuum does after a bulk load: without statistics the planner
        # guesses 15 steps per execution and sorts 10,000 rows to count them.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE executions_step, executions_execution, executions_artifact")
    return execution


def measure(client, path: str, runs: int, **headers) -> dict:
    """Wall time per request (the target), and the CPU time this process spent on it:
    on a shared machine the second says how much of the first is waiting for a core."""
    _body(client.get(path, **headers))  # warm caches and templates
    wall, cpu = [], []
    size = 0
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, **headers)
        body = _body(response)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        size = len(body)
    with CaptureQueriesContext(connection) as queries:
        _body(client.get(path, **headers))
    return {"wall": sorted(wall), "cpu": sorted(cpu), "size": size, "queries": len(queries)}


def report(label: str, figures: dict, target: float | None) -> None:
    wall = figures["wall"]
    median = statistics.median(wall)
    p95 = wall[min(len(wall) - 1, round(len(wall) * 0.95) - 1)]
    verdict = ""
    if target is not None:
        verdict = f"  target median <= {target:.0f} ms: {'met' if median <= target else 'MISSED'}"
    print(
        f"{label:<50} median {median:6.1f} ms  p95 {p95:6.1f} ms  "
        f"(cpu median {statistics.median(figures['cpu']):5.1f} ms)  "
        f"{figures['size'] / 1024:6.1f} KB  {figures['queries']:2d} queries{verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print_start("Detail page of a run with 10,000 steps and a 1 MB output (issue 4)")
    call_command("migrate", verbosity=0)
    execution = build()
    user = get_user_model().objects.get(username="detail-bench")
    client = logged_in_client(user)
    base = execution.get_absolute_url()
    hx = {"HTTP_HX_REQUEST": "true"}
    print(
        f"{connection.vendor}, execution {execution.pk}: "
        f"{execution.steps.count():,} steps, output {len(str(execution.output)) / 1e6:.1f} MB, "
        f"{args.runs} runs each"
    )
    cases = [
        (f"First paint: Overview, {STEPS:,} steps", base, {}, 100),
        ("Step card expanded, 1 MB input and output", f"{base}steps/{BIG_STEP}/",
         {**hx, "HTTP_HX_TARGET": "step-body"}, 150),
        (f"Timeline page {TIMELINE_AFTER // STEP_PAGE_SIZE + 1} "
         f"(after={TIMELINE_AFTER}, {STEP_PAGE_SIZE}/page), htmx",
         f"{base}?tab=overview&after={TIMELINE_AFTER}",
         {**hx, "HTTP_HX_TARGET": "timeline-more"}, None),
        (f"Inspector on step {BIG_STEP}, htmx", f"{base}?tab=overview&step={BIG_STEP}",
         {**hx, "HTTP_HX_TARGET": "inspector"}, None),
        (f"Output tab, 1 MB (first {DEFAULT_MAX_LINES:,} lines)", f"{base}?tab=output", {}, None),
        ("Request tab", f"{base}?tab=request", {}, None),
        ("Stream, once (polling answer)", f"{base}stream?once=1&after={STEPS}", {}, None),
    ]  # fmt: skip
    for label, path, headers, target in cases:
        report(label, measure(client, path, args.runs, **headers), target)
    print_end()


if __name__ == "__main__":
    main()
