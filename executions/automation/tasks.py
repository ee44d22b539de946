"""The task that applies a workspace's rules to one run, off the request that ended it."""

from django.tasks import task

from . import services


@task()
def run_rules(execution_id: str, trigger: str) -> dict:
    runs = services.rules_run(execution_id, trigger)
    return {"rules": [(r.rule_id, r.outcome) for r in runs]}


@task()
def backfill(rule_id: int) -> dict:
    """The admin's "Backfill over past runs", off the request."""
    from .models import Rule

    rule = (
        Rule.objects.select_related("workspace", "saved_view", "queue").filter(pk=rule_id).first()
    )
    if rule is None:
        return {"skipped": "the rule no longer exists"}
    return services.rule_backfill(rule)
