"""The control plane: execute, rerun, cancel, approvals (services.py), webhooks and the task
queue (dispatch.py), schedules and timeouts (scheduling.py), its API, forms, views, reads.
May import: executions core, ingest.schemas and ingest.api's response shape (its API
answers like the ingest API), agents. ingest/table/detail never import control."""
