"""Recompute the overview's hourly rollups from the executions table.

The triggers keep them exact on every write; this is for repairs, restores from
another database, or rows written while the triggers were absent.
"""

from django.core.management.base import BaseCommand, CommandError

from agents.models import Workspace
from executions.overview import rollups, step_rollups


class Command(BaseCommand):
    help = "Recompute the overview rollups (of one workspace, or of all) from the executions."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="workspace slug (default: every workspace)")

    def handle(self, *args, workspace=None, **options):
        if workspace is None:
            rollups.rebuild()
            step_rollups.rebuild()
            self.stdout.write("Rebuilt the overview rollups of every workspace.")
            return
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"--workspace: no workspace with the slug {workspace!r}.")
        rollups.rebuild(found.pk)
        step_rollups.rebuild(found.pk)
        self.stdout.write(f"Rebuilt the overview rollups of workspace {workspace!r}.")
