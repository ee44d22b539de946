"""The executions table: filters, the django-tables2 table, its reads (selectors.py),
exports, saved views and their views (views.py).
May import: executions core and templatetags, agents, feedback. Not ingest, control, detail."""
