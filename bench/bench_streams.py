"""1,000 open live streams on one web process: LISTEN/NOTIFY against the 0.5 s poll.

    .venv/bin/python bench/bench_streams.py [--streams 1000] [--runs 50] [--rounds 20]

For each mode (notify, then poll as the baseline, in the same run) it starts one
uvicorn process (RUNBOARD_NOTIFY=1 or 0) on a private PostgreSQL cluster, opens
--streams event streams (the run page's `GET /executions/<id>/stream`, a logged-in
session, the per-person cap raised) on --runs running executions, and prints:
- database statements per second while every stream is idle, counted by the server
  itself: pg_stat_statements (preloaded in the private cluster, utility statements
  such as BEGIN/COMMIT included) is reset once the streams are open and read
  --idle-seconds later; the bench's own statements on the pg_stat_statements views
  are left out. A count, so never negative (pg_stat_database's xact_commit, used
  before, is flushed by backends at most once a second and gave negative rates over
  short windows). Also the connections the database holds and the web process's
  thread count while idle; --tables executions tables are open meanwhile, their live
  regions asking as htmx does (a long poll in notify mode, every 3 s in poll mode),
  and their statements are in the count;
- step recorded -> event received: a step named `mark-<n>x` is recorded through the
  API and every stream of that run reports when its `step` event carrying that name
  arrived. Timed from just before the POST is sent (an event may arrive before the
  201 does, the NOTIFY firing at commit), so the figure is an upper bound including
  the POST itself; its round trip is printed too. p50, p95 and p99 over all events.
Starts and stops its own cluster and process; traffic only to 127.0.0.1; bounded.
Prints figures; asserts nothing.
"""

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import print_end, print_start  # noqa: E402
from tests.scale.stack import (  # noqa: E402
    Browser,
    Cluster,
    WebProcess,
    _workdir,
    app_env,
    create_execution,
    prepare,
)

# The step card's name: the only place the bench's marker appears in an event.
MARK = re.compile(rb'<span class="step-name">mark-(\d+)x</span>')
OWN = "%pg_stat_statements%"


def percentile(values, q):
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def reset_statements(cluster, dbname) -> None:
    cluster.sql("SELECT pg_stat_statements_reset()", dbname=dbname)


def statements(cluster, dbname) -> int:
    """Statements the server ran in `dbname` since the reset, the bench's own left out."""
    return cluster.sql(
        "SELECT coalesce(sum(s.calls), 0)::bigint FROM pg_stat_statements s"
        " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s AND s.query NOT ILIKE %s",
        dbname,
        OWN,
        dbname=dbname,
    )[0][0]


def held_connections(cluster, dbname) -> int:
    return cluster.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        dbname,
        dbname=dbname,
    )[0][0]


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (/proc/<pid>/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


class SSE:
    """An HTTP/1.1 chunked response parsed into server-sent events."""

    def __init__(self):
        self.raw = b""
        self.body = b""
        self.headers_done = False
        self.status = None

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self.raw += data
        if not self.headers_done:
            head, sep, rest = self.raw.partition(b"\r\n\r\n")
            if not sep:
                return []
            self.status = int(head.split(b" ", 2)[1])
            self.headers_done, self.raw = True, rest
        while True:  # de-chunk
            size_line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                break
            self.body += rest[:size]
            self.raw = rest[size + 2 :]
        events = []
        while b"\n\n" in self.body:
            block, _, self.body = self.body.partition(b"\n\n")
            name, data = "message", []
            for line in block.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].removeprefix(b" "))
                elif line.startswith(b"retry:"):
                    name = "retry"
            events.append((name, b"\n".join(data)))
        return events


async def open_stream(port, path, cookie, seen, index, opened, refused):
    """One stream, held until cancelled. A 503 (the process's connection pool stayed
    busy past DB_POOL_TIMEOUT while hundreds of streams open at once) is retried a
    second later, as a browser's reload would, and so is a stream the server ended (as
    EventSource reconnects); each is counted and printed."""
    for _attempt in range(60):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        parser = SSE()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    refused["ended"] = refused.get("ended", 0) + 1
                    opened.discard(index)
                    break
                for name, data in parser.feed(chunk):
                    if name == "retry":
                        opened.add(index)
                    elif name == "step":
                        for match in MARK.finditer(data):
                            seen.setdefault((index, int(match[1])), time.perf_counter())
                if parser.status is not None and parser.status != 200:
                    refused[parser.status] = refused.get(parser.status, 0) + 1
                    break
        finally:
            writer.close()
        if parser.status not in (200, 429, 503):
            return
        await asyncio.sleep(1)


LIVE = re.compile(r'id="live"[^>]*hx-get="([^"]+)" hx-trigger="every (\d+)s"')


def live_table(base_url, cookie, answers, stop) -> None:
    """One open executions table's live region, as htmx runs it: ask, wait for the
    answer (held by the server in notify mode), ask again `every` seconds later."""
    session = requests.Session()
    session.headers["Cookie"] = cookie
    found = LIVE.search(session.get(f"{base_url}/executions/", timeout=60).text)
    while found and not stop.is_set():
        url, every = found[1].replace("&amp;", "&"), int(found[2])
        try:
            response = session.get(base_url + url, headers={"HX-Request": "true"}, timeout=60)
        except requests.RequestException:
            return
        answers.append(time.monotonic())
        found = LIVE.search(response.text)
        stop.wait(every)


async def measure(web, cluster, dbname, key, cookie, runs, streams, rounds, idle_seconds, tables):
    seen: dict = {}
    opened: set = set()
    refused: dict = {}
    tasks = []
    for i in range(streams):
        path = f"/executions/{runs[i % len(runs)]}/stream"
        tasks.append(
            asyncio.create_task(open_stream(web.port, path, cookie, seen, i, opened, refused))
        )
        if i % 20 == 19:
            await asyncio.sleep(0.5)  # a ramp: 40 new streams a second
    deadline = time.monotonic() + 300
    while len(opened) < streams and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # the first looks and the listener's wake-up settle
    # Open tables' live regions, idle too: their requests and statements are counted.
    answers, stop_tables = [], threading.Event()
    table_threads = [
        threading.Thread(target=live_table, args=(web.url, cookie, answers, stop_tables))
        for _ in range(tables)
    ]
    for thread in table_threads:
        thread.start()
    await asyncio.sleep(5)  # each has loaded its page and asked once
    await asyncio.to_thread(reset_statements, cluster, dbname)
    idle_cpu = cpu_seconds(web.process.pid)
    answered_before = len(answers)
    began = time.perf_counter()
    await asyncio.sleep(idle_seconds)
    count = await asyncio.to_thread(statements, cluster, dbname)
    table_answers = len(answers) - answered_before
    stop_tables.set()
    idle_rate = count / (time.perf_counter() - began)
    held = await asyncio.to_thread(held_connections, cluster, dbname)
    idle_threads, idle_rss = threads(web.process.pid), rss_mb(web.process.pid)
    idle_cpu = cpu_seconds(web.process.pid) - idle_cpu
    steps_cpu, steps_began = cpu_seconds(web.process.pid), time.perf_counter()

    sent, answered, trips = {}, {}, []
    session = requests.Session()
    for n in range(rounds):
        run = runs[n % len(runs)]

        def post(n=n, run=run):
            at = time.perf_counter()
            response = session.post(
                f"{web.url}/api/v1/executions/{run}/steps",
                json={"steps": [{"sequence": n + 1, "kind": "tool_call", "name": f"mark-{n}x"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            return response.status_code, at, time.perf_counter() - at

        status, at, trip = await asyncio.to_thread(post)
        if status < 300:
            sent[n] = at
            answered[n] = at + trip
            trips.append(trip * 1000)
        await asyncio.sleep(0.3)
    await asyncio.sleep(5)  # let the last events arrive (a poll may be behind)
    steps_cpu = cpu_seconds(web.process.pid) - steps_cpu
    steps_wall = time.perf_counter() - steps_began
    latencies, after_answer = [], []
    expected = 0
    for n, at in sent.items():
        watchers = [i for i in range(streams) if i % len(runs) == n % len(runs) and i in opened]
        expected += len(watchers)
        latencies += [(seen[(i, n)] - at) * 1000 for i in watchers if (i, n) in seen]
        # From the 201 instead: a lower bound (the step was recorded before it).
        after_answer += [(seen[(i, n)] - answered[n]) * 1000 for i in watchers if (i, n) in seen]
    end_threads = threads(web.process.pid)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for thread in table_threads:  # a held request is answered within 25 s
        await asyncio.to_thread(thread.join, 60)
    return {
        "opened": len(opened),
        "refused": refused,
        "idle_rate": idle_rate,
        "table_answers": table_answers,
        "idle_count": count,
        "held": held,
        "threads": (idle_threads, end_threads),
        "rss": idle_rss,
        "latencies": latencies,
        "expected": expected,
        "trips": trips,
        "after_answer": after_answer,
        "cpu": (idle_cpu, steps_cpu, steps_wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50, help="running executions watched")
    parser.add_argument("--rounds", type=int, default=20, help="steps recorded per mode")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument(
        "--tables", type=int, default=20, help="open executions tables (live regions)"
    )
    parser.add_argument("--modes", default="notify,poll")
    parser.add_argument(
        "--pg-port", type=int, default=0, help="the private cluster's port (default: a free one)"
    )
    args = parser.parse_args()
    if not 1 <= args.streams <= 5000 or not 1 <= args.runs <= args.streams:
        sys.exit("--streams must be 1..5000 and --runs 1..streams")
    modes = args.modes.split(",")
    if set(modes) - {"notify", "poll"}:
        sys.exit(f"--modes: notify and/or poll, got {args.modes!r}")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.streams + 1000  # a socket per stream, and the rest
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    print_start(f"{args.streams} open live streams on one web process: NOTIFY vs poll")
    workdir = _workdir("rb_streams_")
    cluster = Cluster(workdir / "pg", port=args.pg_port or None).init()
    with open(cluster.datadir / "postgresql.auto.conf", "a") as conf:
        # The server counts every statement it runs (utility ones too) for the idle figure.
        conf.write(
            "shared_preload_libraries = 'pg_stat_statements'\n"
            "pg_stat_statements.track = all\npg_stat_statements.track_utility = on\n"
        )
    cluster.start()
    try:
        cluster.sql("CREATE DATABASE runboard")
        cluster.sql("CREATE EXTENSION pg_stat_statements", dbname="runboard")
        base = app_env(
            cluster.url("runboard"),
            MAX_STREAMS_PER_USER=str(args.streams * 2),
            MAX_STREAMS_PER_KEY=str(args.streams * 2),
            DB_POOL_MAX_SIZE="8",
        )
        key = prepare(base)
        for mode in modes:
            env = {**base, "RUNBOARD_NOTIFY": "1" if mode == "notify" else "0"}
            web = WebProcess(env).start()
            try:
                runs = [create_execution(web.url, key, "streams:v1") for _ in range(args.runs)]
                for run in runs:  # running, so the streams stay open
                    requests.post(
                        f"{web.url}/api/v1/executions/{run}/steps",
                        json={"steps": [{"sequence": 0, "kind": "thought", "name": "start"}]},
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=60,
                    )
                browser = Browser(web.url)
                browser.login()
                cookie = "; ".join(f"{k}={v}" for k, v in browser.session.cookies.items())
                result = asyncio.run(
                    measure(
                        web, cluster, "runboard", key, cookie, runs, args.streams,
                        args.rounds, args.idle_seconds, args.tables,
                    )
                )  # fmt: skip
                latencies, trips = result["latencies"], result["trips"]
                line = (
                    f"{mode:6}  {result['opened']} streams open"
                    + (
                        f" (refused or ended by the server, reopened: {result['refused']})"
                        if result["refused"]
                        else ""
                    )
                    + f"  idle (with {args.tables} open tables, whose live regions were"
                    f" answered {result['table_answers']} times):"
                    f" {result['idle_rate']:.1f} statements/s"
                    f" ({result['idle_count']} in {args.idle_seconds:.0f} s),"
                    f" {result['held']} connections held,"
                    f" web process {result['threads'][0]} threads ({result['threads'][1]} after"
                    f" the steps), {result['rss']} MB resident"
                )
                if latencies:
                    line += (
                        f"\n        step -> event p50 {statistics.median(latencies):.0f} ms"
                        f"  p95 {percentile(latencies, 95):.0f} ms"
                        f"  p99 {percentile(latencies, 99):.0f} ms"
                        f"  ({len(latencies)} of {result['expected']} events received;"
                        f" POST round trip p50 {statistics.median(trips):.0f} ms)"
                        f"\n        from the POST's answer instead (a lower bound):"
                        f" p50 {statistics.median(result['after_answer']):.0f} ms"
                        f"  p95 {percentile(result['after_answer'], 95):.0f} ms"
                        f"  p99 {percentile(result['after_answer'], 99):.0f} ms"
                    )
                else:
                    line += f"\n        no events received of {result['expected']}"
                idle_cpu, steps_cpu, steps_wall = result["cpu"]
                line += (
                    f"\n        web process CPU: {idle_cpu:.1f} s in the {args.idle_seconds:.0f} s"
                    f" idle, {steps_cpu:.1f} s in the {steps_wall:.0f} s of steps;"
                    f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
                )
                print(line, flush=True)
            finally:
                web.stop()
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_end()


if __name__ == "__main__":
    main()
