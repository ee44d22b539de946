"""Apply an automation rule to the past runs its trigger would have fired on."""

from django.core.management.base import BaseCommand, CommandError

from executions.automation.models import Rule
from executions.automation.services import rule_backfill


class Command(BaseCommand):
    help = "Apply a rule to past runs (each run at most once per rule)."

    def add_arguments(self, parser):
        parser.add_argument("rule_id", type=int)
        parser.add_argument("--limit", type=int, default=None, help="At most this many runs.")

    def handle(self, *args, rule_id, limit, **options):
        rule = (
            Rule.objects.select_related("workspace", "saved_view", "queue")
            .filter(pk=rule_id)
            .first()
        )
        if rule is None:
            raise CommandError(f"rule_id: no rule {rule_id}.")
        if limit is not None and limit < 1:
            raise CommandError("--limit: a positive number.")
        counts = rule_backfill(rule, limit=limit)
        total = sum(counts.values())
        parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
        self.stdout.write(f"Rule {rule.name}: {total} runs ({parts}).")
