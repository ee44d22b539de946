"""Data builders: the demo workspace (seed.py, for `manage.py seed_demo`) and the reference
benchmark data set (bench.py, for `manage.py load_bench`; seed.py never imports bench*),
and the demo agent runtime (runtime.py, for `manage.py demo_runtime`). May import: executions
core and control.dispatch, agents, feedback; nothing outside demo/ imports it but commands."""
