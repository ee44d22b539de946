"""The task that applies a workspace's rules to one run, off the request that ended it."""

from django.tasks import task

from . import services


@task()
def run_rules(execution_id: str, trigger: str) -> dict:
    runs = services.rules_run(execution_id, trigger)
    return {"rules": [(r.rule_id, r.outcome) for r in runs]}
