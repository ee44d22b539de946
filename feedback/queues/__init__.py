"""Review queues: reviewers working through runs together, field by field.

Owns the queues (name, instructions, assignees, reviewers per item, lock timeout,
rubric), their items, each reviewer's claim and review of an item (the claim is the
review row before it is submitted: a lock that expires and is renewed while the
reviewer works), the agreement between reviewers (agreement.py: raw and
Krippendorff's alpha, pure maths) and the resolution that turns a disputed field's
chosen value into the correction of record (through feedback.services).

Imports agents and executions models and feedback's services and selectors; nothing
in feedback or executions imports it.
"""
