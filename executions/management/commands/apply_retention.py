"""Apply retention now: delete ended runs past their workspace's (or agent's) retention,
in short batches (executions/retention.py). The scheduler does this daily by itself."""

from django.core.management.base import BaseCommand, CommandError

from agents.models import Workspace
from executions import retention


class Command(BaseCommand):
    help = "Delete ended runs past their retention; --dry-run says what would be deleted."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        parser.add_argument("--workspace", help="workspace slug (default: every workspace)")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.FIRST_BATCH,
            help=f"runs in the first batch (default {retention.FIRST_BATCH}); later batches "
            f"are sized to take about {retention.TARGET_BATCH_SECONDS} s each",
        )

        parser.add_argument(
            "--budget-seconds",
            type=float,
            help="start no batch after this many seconds (default: until done); the rest "
            "is left for the next run",
        )

    def handle(
        self,
        *args,
        dry_run=False,
        workspace=None,
        batch_size=retention.FIRST_BATCH,
        budget_seconds=None,
        **options,
    ):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if budget_seconds is not None and budget_seconds <= 0:
            raise CommandError("--budget-seconds must be more than 0.")
        workspaces = retention._configured()
        if workspace is not None:
            found = Workspace.objects.filter(slug=workspace).first()
            if found is None:
                raise CommandError(f"--workspace: no workspace with the slug {workspace!r}.")
            workspaces = workspaces.filter(pk=found.pk)
            if not workspaces.exists():
                self.stdout.write(f"{workspace}: no retention set; every run is kept.")
                return
        for each in workspaces.order_by("slug"):
            report = retention.apply(
                each, dry_run=dry_run, batch_size=batch_size, budget_seconds=budget_seconds
            )
            self.stdout.write(report.line(dry_run))
        if not workspaces.exists():
            self.stdout.write("No workspace has retention set; every run is kept.")
