"""Ingestion: the JSON API (api.py) and OTLP (otlp.py, semconv.py) doors, their schemas,
and the one write path behind them (services.py, traces.py, steps*.py, prices.py).
May import: executions core (models, lifecycle, counters, selectors), table.filters (the
API's list filter is the table's), agents. Nothing in executions imports the doors."""
