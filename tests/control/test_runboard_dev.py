"""`make run`'s process group: `manage.py runboard_dev` starts the server, a worker, the
scheduler and the demo runtime, and one Ctrl-C stops every one of them."""

import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import BASE_DIR, manage

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = """
from agents.models import Agent, AgentVersion, Workspace
ws = Workspace.objects.create(name="Demo", slug="demo")
AgentVersion.objects.create(agent=Agent.objects.create(workspace=ws, name="a"), version="v1")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, data: bytes | None = None) -> int | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # gone while we looked
    return found


def parent_of(pid: int) -> int | None:
    try:
        # /proc/<pid>/stat: "pid (command) state ppid ..."; the command may hold spaces.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def exit_handle(pid: int) -> int | None:
    """A pidfd for `pid`, which becomes readable when the process exits; None if it
    is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def exited(fd: int, seconds: float) -> bool:
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def test_one_ctrl_c_stops_server_worker_scheduler_and_runtime(process_env, tmp_path):
    # As `make run` does: DEBUG on (static files served by runserver).
    env = {**process_env, "DEBUG": "1", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    manage(env, "shell", "--no-imports", "-c", DEMO)
    web, runtime = free_port(), free_port()
    addr = f"127.0.0.1:{web}"
    dev = subprocess.Popen(
        [sys.executable, "manage.py", "runboard_dev", "--addr", addr,
         "--runtime-port", str(runtime), "--noreload"],
        cwd=BASE_DIR, env=env, start_new_session=True,
        stdout=(log := tmp_path / "runboard_dev.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            up = answers(f"http://{addr}/accounts/login/") == 200
            # The runtime refuses what is not a signed Runboard webhook.
            if up and answers(f"http://127.0.0.1:{runtime}/hooks/a", b"{}") == 400:
                break
            assert dev.poll() is None, "runboard_dev exited early:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("the server and the runtime did not come up:\n" + log.read_text()[-3000:])
        assert len(processes_mentioning(f"--addr {addr}")) == 1
        assert processes_mentioning("db_worker --interval 0.5")
        assert processes_mentioning(f"--port {runtime}")
        children = [
            pid
            for text in (f"runserver {addr}", "db_worker --interval 0.5", f"--port {runtime}")
            for pid in processes_mentioning(text)
            if parent_of(pid) == dev.pid
        ]
        assert len(children) >= 3, children  # the server, the worker, the runtime at least
        exits = [fd for pid in children if (fd := exit_handle(pid)) is not None]

        os.killpg(dev.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert dev.wait(timeout=30) == 0
        # Every child has exited (not merely been told to): wait on each one's exit.
        assert all(exited(fd, seconds=30) for fd in exits)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)

    assert processes_mentioning(f"runserver {addr}") == []
    assert processes_mentioning(f"--port {runtime}") == []
    assert answers(f"http://{addr}/accounts/login/") is None
