"""Automation rules: "when a run finishes (or fails, or gets a thumbs-down note) and
matches a saved view's filters, for X% of them: add it to a review queue, tag it,
call a webhook".

Owns Rule and RuleRun (one row per rule and run: the at-most-once guard and the
rule's log), the deterministic sampling, the task that applies a workspace's rules
to one run, the receivers that enqueue it (the lifecycle's `execution_ended` signal,
a thumbs-down note) after the write commits, and the backfill over past runs.

Imports executions core, the table's FilterSet (to match a saved view), tags,
review queues (feedback.queues) and the control plane's outbound sender and
signature; nothing imports it.
"""
