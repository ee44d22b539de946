"""Old import path of the webhook task, kept for queued rows only: django-tasks-db stores a
task by its dotted path, and rows enqueued before the move to control/ name
`executions.dispatch.deliver`. New code imports executions.control.dispatch."""

from executions.control.dispatch import deliver  # noqa: F401
