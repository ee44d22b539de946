"""Helpers shared by the scripts in bench/: Django set up for measuring, a logged-in
client for the bench workspace, an API key, and timing that prints median and p95.

A script starts with

    from common import setup          # bench/ is on sys.path when run as a script
    setup()
    from common import bench_workspace, logged_in_client, measure, member

and is run as `DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench
.venv/bin/python bench/bench_x.py`. Figures are printed, never asserted.
"""

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DB = "postgres://postgres@127.0.0.1:5432/runboard_bench"


def git_commit() -> str:
    """The commit measured: short hash, with "+changes" when the tree differs from it
    (a figure from uncommitted code cannot be reproduced from the hash alone)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}+changes" if dirty else head


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the core count: on a shared machine
    they say how much of a wall time was spent waiting for a CPU."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def print_start(title: str) -> None:
    """The first lines of every benchmark's output: what, which commit, what load."""
    print(title)
    print(f"commit {git_commit()}")
    print(f"load average at start: {load_average()}", flush=True)


def print_end() -> None:
    """The last line of every benchmark's output."""
    print(f"\nload average at end: {load_average()}", flush=True)


def setup(*, require_postgres: bool = True) -> None:
    """Configure Django with bench/settings.py (DEBUG off, sessions in signed cookies)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection

    if require_postgres and connection.vendor != "postgresql":
        sys.exit(
            "This benchmark measures PostgreSQL: set DATABASE_URL, e.g.\n"
            f"  DATABASE_URL={REFERENCE_DB} .venv/bin/python {sys.argv[0]}\n"
            "and load the reference data set first (see bench/README.md)."
        )


def bench_workspace(slug: str = "bench"):
    """The workspace load_bench filled, or exit saying how to fill it."""
    from agents.models import Workspace
    from executions.models import Execution

    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None or not Execution.objects.filter(workspace=workspace).exists():
        sys.exit(
            f"Workspace '{slug}' has no executions. Load it with:\n"
            "  DEBUG=1 .venv/bin/python manage.py load_bench --executions 1000000 "
            f"--steps-per-execution 10 --workspace {slug} --reset"
        )
    return workspace


def member(workspace, *, username: str = "bench", role: str | None = None):
    """A user who is a member of `workspace`: the loaded `bench` admin by default.

    With a role (viewer, operator, reviewer, admin), a user `<username>-<role>` with that
    role is created once and reused, for measuring what a given role sees.
    """
    from django.contrib.auth import get_user_model

    from agents.models import Membership

    User = get_user_model()
    if role is not None:
        username = f"{username}-{role}"
    user, _ = User.objects.get_or_create(username=username)
    membership, created = Membership.objects.get_or_create(
        user=user, workspace=workspace, defaults={"role": role or "admin"}
    )
    if role is not None and not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return user


def logged_in_client(user, **defaults):
    """A test client logged in as `user`. The session lives in a signed cookie (see
    bench/settings.py), so logging in writes no row and updates no last_login."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.test import Client
    from django.utils.module_loading import import_string

    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    client = Client(**defaults)
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return client


def api_key(workspace, *, name: str = "bench script") -> str:
    """A new API key of `workspace`; returns the raw value for `Authorization: Bearer`."""
    from agents.models import ApiKey

    raw, prefix, hashed = ApiKey.generate()
    ApiKey.objects.create(workspace=workspace, name=name, prefix=prefix, hashed_key=hashed)
    return raw


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank of already sorted values."""
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


@dataclass
class Timing:
    name: str
    times_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        return percentile(sorted(self.times_ms), 95)

    def line(self, budget_ms: float | None = None) -> str:
        times = sorted(self.times_ms)
        text = (
            f"{self.name:<44} n={len(times):<4} median {self.median:8.1f} ms   "
            f"p95 {self.p95:8.1f} ms   min {times[0]:7.1f}   max {times[-1]:8.1f}"
        )
        if budget_ms is not None:
            text += "   ok" if self.median <= budget_ms else f"   OVER {budget_ms:g} ms budget"
        return text


def measure(
    name: str,
    call: Callable[[], object],
    *,
    runs: int = 30,
    warmup: int = 3,
    budget_ms: float | None = None,
) -> Timing:
    """Call `call` `warmup` times untimed, then `runs` times timed; print and return it."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    timing = Timing(name, times)
    print(timing.line(budget_ms), flush=True)
    return timing


def count_queries(call: Callable[[], object]) -> int:
    """How many SQL queries one call makes (DEBUG is off, so they are captured here)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)
