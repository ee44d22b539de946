"""manage.py demo_runtime: serve the demo agent runtime (executions/demo/runtime.py)."""

import logging
import signal
import threading
from http.server import ThreadingHTTPServer

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agents.models import Workspace
from executions.demo.runtime import Runtime, make_handler


class Command(BaseCommand):
    help = "Run the demo agent runtime: receives webhooks and reports back through the API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--api-url", default=None, help="Runboard's base URL (default: SITE_URL)."
        )
        parser.add_argument("--workspace", default="demo", help="Slug of the workspace to serve.")
        parser.add_argument(
            "--step-delay", type=float, default=1.5, help="Seconds between steps (default 1.5)."
        )

    def handle(self, *, host, port, api_url, workspace, step_delay, **options):
        logging.basicConfig(level=logging.INFO, format="demo runtime: %(message)s")
        served = Workspace.objects.filter(slug=workspace).first()
        if served is None:
            raise CommandError(
                f"No workspace with slug {workspace!r}: run `manage.py seed_demo` first, "
                "or pass --workspace."
            )
        runtime = Runtime(api_base=api_url or settings.SITE_URL, step_delay=step_delay)
        count = runtime.configure(workspace=served, hook_base=f"http://{host}:{port}")
        server = ThreadingHTTPServer((host, port), make_handler(runtime))
        server.daemon_threads = True
        # After the server is up: an adopted run paused for approval hears the decision here.
        adopted = runtime.adopt(workspace=served)
        self.stdout.write(
            f"Demo runtime on http://{host}:{port}/hooks/ serving {count} agent version(s) of "
            f"{served.name}, reporting to {runtime.api_base}; carrying on {adopted} run(s) "
            "already under way."
        )

        def stop(signum, frame):
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.serve_forever()
        server.server_close()
