"""The periodic loop beside the workers: fire due schedules, time out overdue
executions, put webhook tasks abandoned by dead workers back in the queue, apply
retention once a day per workspace (a couple of seconds of batches per round), and
evaluate the alert rules once a minute (executions/alerts).

Safe to run more than one (schedules are claimed by compare-and-set), but one is enough.
"""

import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from executions import budgets, retention
from executions.alerts import evaluate as alerts
from executions.control import dispatch, scheduling

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Fire schedules, sweep timeouts and reclaim abandoned webhook tasks, every few seconds."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Seconds between rounds (default 5)."
        )
        parser.add_argument("--once", action="store_true", help="Do one round and exit.")
        parser.add_argument(
            "--lease",
            type=float,
            default=None,
            help="Seconds after which a claimed webhook task counts as abandoned "
            "(default: RUNBOARD_TASK_LEASE_SECONDS, 60).",
        )

    def handle(self, *, interval: float, once: bool, lease: float | None, **options):
        self.running = True

        def stop(signum, frame):
            self.running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if not once:
            self.stdout.write(f"Scheduler: a round every {interval:g} s. Ctrl-C stops it.")
        last_minute = None
        while self.running:
            close_old_connections()
            try:
                fired = scheduling.schedules_fire()
                timed_out = scheduling.timeouts_sweep()
                reclaimed = dispatch.tasks_reclaim(lease_seconds=lease)
                for report in retention.sweep():
                    self.stdout.write(report.line(dry_run=False))
                budgets.seconds_sweep()
                minute = int(time.time() // 60)
                if minute != last_minute:
                    # Alert windows move by the minute: evaluating more often only repeats.
                    tick = alerts.evaluate()
                    last_minute = minute
                    if tick.events:
                        self.stdout.write(f"alerts: {tick.rules} rule(s), {tick.events} change(s)")
            except Exception:
                # One bad round (a locked SQLite file, a lost connection) must not stop
                # the schedules for good: log it and try again next round.
                if once:
                    raise
                logger.exception("Scheduler round failed; retrying in %s s.", interval)
            else:
                if fired or timed_out or reclaimed or once:
                    self.stdout.write(
                        f"fired {len(fired)} schedule(s), timed out {timed_out}, "
                        f"reclaimed {reclaimed} task(s)"
                    )
            if once:
                return
            deadline = time.monotonic() + interval
            while self.running and time.monotonic() < deadline:
                time.sleep(min(0.2, interval))
