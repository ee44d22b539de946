"""Ingestion: the JSON API (api.py) and OTLP (otlp.py, semconv.py) doors, their schemas,
and the one write path behind them (services.py, traces.py, steps*.py, prices.py).
May import: executions core (models, lifecycle, counters, selectors), table.selectors
(the API lists with the table's filterset), agents, feedback. In executions/ only
control/ imports it (its API answers in ingest's shapes and errors)."""
