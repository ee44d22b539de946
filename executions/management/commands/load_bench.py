import time

from django.core.management.base import BaseCommand, CommandError

from executions.demo.bench import AlreadyLoaded, NeedsPostgres, load


class Command(BaseCommand):
    help = (
        "Load the reference benchmark data set into PostgreSQL with COPY: a workspace "
        "(default 'bench', login bench / bench), 20 agents, 90 days of executions and steps."
    )

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=1_000_000)
        parser.add_argument("--steps-per-execution", type=int, default=10)
        parser.add_argument("--workspace", default="bench", help="workspace slug")
        parser.add_argument(
            "--reset", action="store_true", help="replace the workspace's executions first"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed")

    def handle(self, *args, **options):
        executions, steps = options["executions"], options["steps_per_execution"]
        if executions < 1:
            raise CommandError("--executions must be at least 1.")
        if not 1 <= steps <= 1000:
            raise CommandError("--steps-per-execution must be between 1 and 1000.")
        began = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - began:7.1f} s] {message}")
            self.stdout.flush()

        try:
            report = load(
                executions=executions,
                steps=steps,
                slug=options["workspace"],
                reset=options["reset"],
                seed=options["seed"],
                progress=progress,
            )
        except (NeedsPostgres, AlreadyLoaded) as exc:
            raise CommandError(str(exc)) from None
        statuses = ", ".join(f"{s} {n:,}" for s, n in report.statuses.items())
        self.stdout.write(f"Statuses: {statuses}")
        python = sum(p[2] for p in report.phases)
        server = [p[3] for p in report.phases if p[3] is not None]
        cpu = f"CPU: python {python:.0f} s" + (f", database {sum(server):.0f} s" if server else "")
        self.stdout.write(cpu)
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {report.executions:,} executions, {report.steps:,} steps, "
                f"{report.corrections:,} field corrections and {report.notes:,} notes into "
                f"workspace '{options['workspace']}' in {time.monotonic() - began:.1f} s. "
                "Log in as bench / bench."
            )
        )
