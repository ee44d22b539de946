"""What the stack tests read back: the execution through the JSON API, its steps, and
the detail page."""

from django.test import Client

from executions.models import Execution


def stored(workspace, key) -> tuple[dict, list[dict], Execution]:
    execution = Execution.objects.get(workspace=workspace)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    run = api.get(f"/api/v1/executions/{execution.pk}").json()
    steps = api.get(f"/api/v1/executions/{execution.pk}/steps").json()
    return run, steps["data"], execution
