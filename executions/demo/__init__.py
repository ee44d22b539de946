"""Data builders: the demo workspace (seed.py, for `manage.py seed_demo`) and the reference
benchmark data set (bench.py, for `manage.py load_bench`)."""
