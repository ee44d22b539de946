"""Reviewer feedback speed on a big output: the JSON form and the diff. Prints figures;
asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_feedbackbench \
        .venv/bin/python bench/bench_feedback.py [--runs 30]

Target (issue 6): for an execution whose output is 1 MB with 1,000 leaf fields and
200 corrections, server time of the form and of the diff, median <= 150 ms each.
Server time is measured in process through Django's test client, so it covers
middleware, queries, replaying the corrections, the view and the templates, and
leaves out the network and the browser. Measured: the htmx requests behind the
panes (what a reviewer waits for when saving or switching layout) and the detail
page's Form and Diff tabs as whole pages.

Also printed, not budgeted: one save of a single edited field through the whole
form, which parses all 1,000 fields back, replays, checks the bases and validates
the schema.

The database in DATABASE_URL (SQLite when unset) is migrated and the bench data is
created once, then reused.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_end, print_start, setup

setup(require_postgres=False)

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from agents.models import Agent, AgentVersion, Membership, Role, Workspace  # noqa: E402
from executions import counters  # noqa: E402
from executions.models import Execution, Status  # noqa: E402
from feedback import jsonform, pointer  # noqa: E402
from feedback.models import FieldCorrection  # noqa: E402
from feedback.selectors import apply_correction, corrected_output  # noqa: E402

SLUG = "feedback-bench"
ITEMS = 100  # x 10 leaves = 1,000 leaf fields
DESCRIPTION_BYTES = 10_200  # x 100 items, about 1 MB
CORRECTIONS = 200

SCHEMA = {
    "type": "object",
    "properties": {
        "invoice": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "quantity"],
                "properties": {
                    "sku": {"type": "string"},
                    "description": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 0},
                    "unit_price": {"type": "number"},
                    "shipping": {
                        "type": "object",
                        "properties": {
                            "date": {"type": "string", "format": "date"},
                            "carrier": {"enum": ["DHL", "UPS", "FedEx", "Royal Mail"]},
                            "tracking": {"type": "string"},
                            "insured": {"type": "boolean"},
                        },
                    },
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def make_output(rng: random.Random) -> dict:
    words = [
        "invoice",
        "line",
        "pallet",
        "carton",
        "delivery",
        "warehouse",
        "order",
        "supplier",
        "net",
        "gross",
    ]
    items = []
    for i in range(ITEMS):
        text = []
        size = 0
        while size < DESCRIPTION_BYTES:
            w = rng.choice(words)
            text.append(w)
            size += len(w) + 1
        items.append(
            {
                "sku": f"SKU-{i:05d}",
                "description": " ".join(text),
                "quantity": rng.randint(1, 40),
                "unit_price": round(rng.uniform(1, 500), 2),
                "shipping": {
                    "date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "carrier": rng.choice(["DHL", "UPS", "FedEx"]),
                    "tracking": f"TRK{rng.randint(10**9, 10**10 - 1)}",
                    "insured": rng.random() < 0.5,
                },
                "tags": [rng.choice(words), rng.choice(words)],
            }
        )
    return {"items": items}


def leaf_count(value) -> int:
    if isinstance(value, dict):
        return sum(leaf_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaf_count(v) for v in value)
    return 1


def make_corrections(execution: Execution, output: dict, user, rng: random.Random) -> None:
    """200 corrections: many fields once, some several times, a few rows added or removed."""
    doc = corrected_output(output, []).output
    rows = []
    now = timezone.now()
    n = -1
    while len(rows) < CORRECTIONS:
        n += 1
        i = rng.randrange(len(doc["items"]))
        if n % 40 == 39:
            before = doc["items"][i]
            path, op, after = f"/items/{i}", "remove", None
        elif n % 40 == 19:
            before = None
            path, op = f"/items/{i}", "add"
            after = {"sku": f"NEW-{n}", "quantity": 1, "unit_price": 1.0}
        else:
            field = rng.choice(
                ["quantity", "unit_price", "sku", "shipping/carrier", "shipping/date", "tags/1"]
            )
            path = f"/items/{i}/{field}"
            before = pointer.get(doc, path, None)
            if before is None:
                continue
            op = "replace"
            after = {
                "quantity": rng.randint(1, 40),
                "unit_price": round(rng.uniform(1, 500), 2),
                "sku": f"SKU-X{n}",
                "shipping/carrier": "UPS",
                "shipping/date": "2026-12-24",
                "tags/1": f"fixed-{n}",
            }[field]
        correction = FieldCorrection(
            workspace_id=execution.workspace_id,
            execution=execution,
            path=path,
            op=op,
            value_before=before,
            value_after=after,
            author=user,
            created_at=now + timedelta(seconds=n),
        )
        doc = apply_correction(doc, correction)
        rows.append(correction)
    FieldCorrection.objects.bulk_create(rows)
    Execution.objects.filter(pk=execution.pk).update(correction_count=len(rows))


def ensure_data() -> tuple[Execution, object]:
    call_command("migrate", verbosity=0)
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="feedback-bench")
    workspace = Workspace.objects.filter(slug=SLUG).first()
    if workspace is not None:
        execution = Execution.objects.get(workspace=workspace)
        return execution, user
    rng = random.Random(6)
    with transaction.atomic():
        workspace = Workspace.objects.create(name="Feedback bench", slug=SLUG)
        Membership.objects.create(user=user, workspace=workspace, role=Role.REVIEWER)
        agent = Agent.objects.create(workspace=workspace, name="big-extractor")
        version = AgentVersion.objects.create(agent=agent, version="v1", output_schema=SCHEMA)
        output = make_output(rng)
        execution = Execution.objects.create(
            workspace=workspace,
            agent=agent,
            agent_version=version,
            agent_name=agent.name,
            version_name=version.version,
            status=Status.COMPLETED,
            output=output,
            started_at=timezone.now(),
            completed_at=timezone.now(),
            duration_ms=1000,
        )
        counters.count_created([execution])
        make_corrections(execution, output, user, rng)
    return execution, user


def timed(client: Client, path: str, runs: int, **headers) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per request. The CPU time of this process leaves out
    waiting for a core (the bench machine is shared) and the database's own work."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, **headers)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return wall, cpu


def _p95(times: list[float]) -> float:
    times = sorted(times)
    return times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def report(label: str, wall: list[float], cpu: list[float], size: int, queries: int) -> None:
    print(
        f"{label:<40} median {statistics.median(wall):6.1f} ms  p95 {_p95(wall):6.1f} ms"
        f"  | cpu median {statistics.median(cpu):6.1f} ms  p95 {_p95(cpu):6.1f} ms"
        f"  | {size / 1024:5.0f} KB {queries:2d} queries"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    print_start("Reviewer feedback on a 1 MB output (issue 6)")
    execution, user = ensure_data()
    size = len(jsonform.canonical(execution.output).encode())
    print(
        f"database: {connection.vendor} {settings.DATABASES['default']['NAME']}\n"
        f"output: {size / 1024 / 1024:.2f} MB, {leaf_count(execution.output):,} leaf fields, "
        f"{FieldCorrection.objects.filter(execution=execution).count()} corrections\n"
    )
    client = Client()
    client.force_login(user)
    htmx = {"HTTP_HX_REQUEST": "true"}
    pk = execution.pk
    cases = [
        ("form (htmx pane)", f"/executions/{pk}/feedback/", htmx),
        ("diff inline (htmx pane)", f"/executions/{pk}/feedback/diff/", htmx),
        ("diff side by side (htmx pane)", f"/executions/{pk}/feedback/diff/?mode=split", htmx),
        ("corrected JSON (htmx pane)", f"/executions/{pk}/feedback/diff/?mode=corrected", htmx),
        ("detail page, Form tab (whole page)", f"/executions/{pk}/?tab=form", {}),
        ("detail page, Diff tab (whole page)", f"/executions/{pk}/?tab=diff", {}),
    ]
    for label, path, headers in cases:
        client.get(path, **headers)  # warm: session, template and schema caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, **headers)
        query_count = len(queries)
        wall, cpu = timed(client, path, args.runs, **headers)
        report(label, wall, cpu, len(response.content), query_count)

    # One save through the whole form: the browser sends every field back.
    from tests.feedback.browserform import edit, form_fields

    html = client.get(f"/executions/{pk}/feedback/", **htmx).content.decode()
    fields = form_fields(html[html.index("<form") : html.index("</form>")])
    print(
        f"\nthe form posts {len(fields):,} fields "
        f"(DATA_UPLOAD_MAX_NUMBER_FIELDS is {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS})"
    )
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = max(
        settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 0, len(fields) + 100
    )

    def save(n: int):
        posted = edit(fields, "/items/3/shipping/tracking", f"TRK-BENCH-{n}-{time.time_ns()}")
        body = urlencode([tuple(f) for f in posted])
        return body, lambda: client.post(
            f"/executions/{pk}/feedback/",
            body,
            content_type="application/x-www-form-urlencoded",
            **htmx,
        )

    saves = min(args.runs, 10)
    wall, cpu = [], []
    # The first save is counted, not timed: capturing queries adds its own work.
    for n in range(saves + 1):
        body, post = save(n)
        if n == 0:
            with CaptureQueriesContext(connection) as queries:
                response = post()
            query_count = len(queries)
        else:
            start, start_cpu = time.perf_counter(), time.process_time()
            response = post()
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        html = response.content.decode()
        assert "Saved 1 correction." in html, response.content[:500]
        fields = form_fields(html[html.index("<form") : html.index("</form>")])
    report("save one field through the form (htmx)", wall, cpu, len(response.content), query_count)
    print(f"(one save's request body is {len(body) / 1024:.0f} KB)")
    # Leave the bench data as it was measured: 200 corrections.
    extra = FieldCorrection.objects.filter(execution=execution).order_by("-id")[: saves + 1]
    FieldCorrection.objects.filter(pk__in=[c.pk for c in extra]).delete()
    Execution.objects.filter(pk=pk).update(correction_count=CORRECTIONS)
    print_end()


if __name__ == "__main__":
    main()
