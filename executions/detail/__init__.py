"""The detail page of one execution: views, what the page knows (context.py), payload
rendering, the reproduce panel, its reads (selectors.py) and its live stream (stream.py).
May import: executions core and templatetags, agents, feedback. Not ingest, control, table."""
