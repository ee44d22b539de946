"""The overview page (`/overview/`) and the rollups that make it fast.

Owns: the hourly rollup tables (models.py), the database triggers that keep them
exact on every write path and the command-free rebuild (rollups.py), the
histogram arithmetic (histogram.py), the page's reads (selectors.py), its SVG
charts (charts.py) and views. May import executions core (models, lifecycle
constants) and agents; nothing outside this package imports it except urls.py,
the migration that installs the triggers and the rebuild_rollups command.
"""
