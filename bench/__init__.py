"""Benchmarks that print figures; never asserted in tests. See README.md."""
