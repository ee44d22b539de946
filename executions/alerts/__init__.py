"""Alerts: rules that watch a workspace's runs and tell people when something breaks.

Owns the rules (models.py: AlertRule with its metric, scope, window, condition,
minimum runs, sustain, snooze and mute), their state machine and history
(evaluate.py: ok -> pending -> firing -> resolved, one AlertEvent per change), the
metrics read from the overview's hourly rollups (metrics.py; windows under an hour
read the executions table's created_at index instead), and the notifications
(notify.py: signed webhook, Slack-compatible webhook and email, retried with
backoff, each attempt a Notification row). The evaluator runs every minute in
`manage.py runboard_scheduler`; pages are views.py (admins edit, everyone reads).
"""
