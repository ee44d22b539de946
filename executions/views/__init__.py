"""Dashboard views of executions: `table` for the list and batches, `detail` for one run."""
