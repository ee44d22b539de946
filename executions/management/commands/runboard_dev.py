"""Everything `make run` needs, as one command: the web server, a queue worker, the
scheduler loop and the demo runtime. Ctrl-C stops them all; so does any one of them
exiting.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 8


class Command(BaseCommand):
    help = "Run the server, a worker, the scheduler and the demo runtime together (for make run)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port of the server")
        parser.add_argument("--runtime-port", type=int, default=8765)
        parser.add_argument("--no-runtime", action="store_true", help="Without the demo runtime.")
        parser.add_argument(
            "--noreload", action="store_true", help="Do not restart the server on code changes."
        )

    def handle(self, *, addr, runtime_port, no_runtime, noreload, **options):
        host = addr.rsplit(":", 1)[0]
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = {**os.environ, "SITE_URL": f"http://{addr}"}
        commands = {
            "web": [*manage, "runserver", addr, *(["--noreload"] if noreload else [])],
            "worker": [*manage, "db_worker", "--interval", "0.5", "--no-reload"],
            "scheduler": [*manage, "runboard_scheduler", "--interval", "5"],
        }
        if not no_runtime:
            commands["runtime"] = [
                *manage,
                "demo_runtime",
                "--host",
                host,
                "--port",
                str(runtime_port),
                "--api-url",
                f"http://{addr}",
            ]
        # Each child leads its own process group, so that stopping one also stops what it
        # started (runserver's autoreloader runs the server in a grandchild).
        children = {
            name: subprocess.Popen(command, env=env, start_new_session=True)
            for name, command in commands.items()
        }
        self.stdout.write(
            f"Started {', '.join(children)}. Open http://{addr}/ ; Ctrl-C stops everything."
        )
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exited = None
        while not stopping and exited is None:
            time.sleep(0.3)
            exited = next((n for n, p in children.items() if p.poll() is not None), None)
        if exited:
            self.stderr.write(
                f"{exited} exited ({children[exited].returncode}); stopping the rest."
            )
        # SIGTERM, not SIGINT: a process started in the background inherits SIGINT ignored,
        # and runserver would then never stop; every child stops cleanly on SIGTERM.
        for child in children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
        if exited:
            sys.exit(1)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(child.pid, signum)
