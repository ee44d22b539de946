"""Review queue claims on a big queue (issue 20). Prints figures; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_queuebench \
        .venv/bin/python bench/bench_queues.py [--items 100000] [--runs 200]

Also times the queue page's progress per reviewer (done, skipped, remaining, median
time per item) over 100,000 reviewed items: aggregates in SQL, four queries.

Target: with 100,000 items in a queue, claiming the next one takes <= 50 ms at the
median. Measured in process through the claim service (claim_next: the role check,
the held-claim lookup, FOR UPDATE SKIP LOCKED on the next open item, the recount and
the insert), each claim by a different reviewer so each takes a new item:
- on a fresh queue (the next item is at the front);
- with the first half of the queue done (the claim index skips the done items);
- with 200 live claims of others in front (every claim steps over them).

The database in DATABASE_URL (SQLite when unset) is migrated and the bench data is
created once, then reused.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import time
from datetime import timedelta

from common import Timing, measure, print_end, print_start, setup

setup(require_postgres=False)

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from agents.models import Agent, AgentVersion, Membership, Role, Workspace  # noqa: E402
from executions.models import Execution, Status  # noqa: E402
from feedback.queues.models import Queue, QueueItem, Review  # noqa: E402
from feedback.queues.selectors import queue_progress  # noqa: E402
from feedback.queues.services import claim_next, items_add_ids, review_submit  # noqa: E402

SLUG = "queue-bench"


def build(items: int):
    workspace, _ = Workspace.objects.get_or_create(slug=SLUG, defaults={"name": "Queue bench"})
    agent, _ = Agent.objects.get_or_create(
        workspace=workspace, slug="inv", defaults={"name": "inv"}
    )
    version, _ = AgentVersion.objects.get_or_create(agent=agent, version="v1")
    have = Execution.objects.filter(workspace=workspace).count()
    if have < items:
        now = timezone.now()
        rows = [
            Execution(
                workspace=workspace,
                agent=agent,
                agent_version=version,
                agent_name="inv",
                version_name="v1",
                status=Status.COMPLETED,
                output={"invoice_id": f"INV-{i}", "total": i},
                created_at=now,
            )
            for i in range(have, items)
        ]
        Execution.objects.bulk_create(rows, batch_size=5000)
    queue, created = Queue.objects.get_or_create(workspace=workspace, name="Big queue")
    if created or QueueItem.objects.filter(queue=queue).count() < items:
        ids = list(
            Execution.objects.filter(workspace=workspace)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)[:items]
        )
        items_add_ids(queue=queue, ids=ids)
    return workspace, queue


def reviewers(workspace, n: int):
    User = get_user_model()
    out = []
    for i in range(n):
        user, _ = User.objects.get_or_create(username=f"qbench-{i}")
        m, _ = Membership.objects.get_or_create(
            user=user, workspace=workspace, defaults={"role": Role.REVIEWER}
        )
        m.user = user
        out.append(m)
    return out


def reset(queue):
    Review.objects.filter(item__queue=queue).delete()
    QueueItem.objects.filter(queue=queue).update(state=QueueItem.State.OPEN, reviews_done=0)
    vacuum()


def vacuum():
    """A bulk update leaves every old row version in the claim index until vacuum;
    a queue worked item by item gets there through autovacuum. Measure that state."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE queues_queueitem")
            cur.execute("VACUUM ANALYZE queues_review")


def progress(queue, people):
    """The queue page's progress (per reviewer: done, skipped, remaining, median time)
    with every item reviewed once by one of 20 reviewers and a seventh skipped: four
    aggregate queries, timed."""
    reset(queue)
    now = timezone.now()
    ids = list(QueueItem.objects.filter(queue=queue).order_by("id").values_list("id", flat=True))
    rows = []
    for k, item_id in enumerate(ids):
        started = now - timedelta(seconds=600 + k % 97)
        rows.append(
            Review(
                workspace_id=queue.workspace_id,
                item_id=item_id,
                reviewer=people[k % len(people)].user,
                started_at=started,
                expires_at=started + timedelta(hours=1),
                submitted_at=started + timedelta(seconds=20 + k % 61),
                skipped=k % 7 == 0,  # not a multiple of 20: everyone has timed reviews
            )
        )
    Review.objects.bulk_create(rows, batch_size=5000)
    QueueItem.objects.filter(queue=queue).update(state=QueueItem.State.DONE, reviews_done=1)
    QueueItem.objects.filter(id__in=ids[::10]).update(state=QueueItem.State.OPEN, reviews_done=0)
    vacuum()
    with CaptureQueriesContext(connection) as queries:
        result = queue_progress(queue=queue)
    print(
        f"progress: {len(rows):,} reviews, {len(result.assignees)} reviewers, "
        f"{len(queries.captured_queries)} queries; first: "
        f"{result.assignees[0].reviewer} done {result.assignees[0].done:,}, "
        f"median {result.assignees[0].median_seconds:.1f} s"
    )
    # CPU of this process beside wall: the machine is shared.
    cpu = time.process_time()
    measure("queue progress (SQL aggregates)", lambda: queue_progress(queue=queue), runs=20)
    print(f"  client CPU over 23 calls: {(time.process_time() - cpu) * 1000:.0f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--progress-only", action="store_true", help="skip the claim timings")
    args = parser.parse_args()
    print_start(f"Review queue claims, {args.items:,} items ({connection.vendor})")
    call_command("migrate", verbosity=0)
    workspace, queue = build(args.items)
    print(f"queue items: {QueueItem.objects.filter(queue=queue).count():,}")
    people = reviewers(workspace, args.runs * 2 + 30)

    def claims(name, pool, *, submit: bool):
        """Time claim_next for each reviewer in turn; with `submit`, each then submits
        (untimed), so the claims do not pile up in front of the next one."""
        it = iter(pool)

        def one():
            member = next(it)
            began = time.perf_counter()
            review = claim_next(queue=queue, membership=member)
            took = (time.perf_counter() - began) * 1000
            if submit:
                review_submit(review=review, membership=member, fields={}, answers={})
            return took

        for _ in range(3):
            one()
        timing = Timing(name, [one() for _ in range(args.runs)])
        print(timing.line(50), flush=True)

    if args.progress_only:
        progress(queue, people[:20])
        reset(queue)
        print_end()
        return
    reset(queue)
    # 20 reviewers holding claims at the front, as while a team works the queue.
    for m in people[-20:]:
        claim_next(queue=queue, membership=m)
    claims("claim next (20 claims held), then submit", people[: args.runs + 3], submit=True)

    reset(queue)
    half = list(
        QueueItem.objects.filter(queue=queue)
        .order_by("id")
        .values_list("id", flat=True)[: args.items // 2]
    )
    QueueItem.objects.filter(id__in=half).update(state=QueueItem.State.DONE, reviews_done=1)
    vacuum()
    claims("claim next, first half done, then submit", people[: args.runs + 3], submit=True)
    # Claims never submitted: the k-th claim steps over k-1 live claims of others.
    claims(
        f"claim next, {args.runs} claims piling up",
        people[args.runs + 3 :][: args.runs + 3],
        submit=False,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                "EXPLAIN SELECT id FROM queues_queueitem WHERE queue_id = %s AND state = 'open' "
                "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                [queue.pk],
            )
            print("plan:", " / ".join(r[0].strip() for r in cur.fetchall()[:3]))
    progress(queue, people[:20])
    reset(queue)
    print_end()


if __name__ == "__main__":
    main()
