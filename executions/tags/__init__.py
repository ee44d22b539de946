"""Tags on executions: short labels that people (the table's bulk action, the API)
and automation rules put on runs, shown in the table and filtered with `tag=`
(repeatable: a run must carry every tag named).

Owns the ExecutionTag model, the tag name rules and the writes (tags_add,
tags_remove). Imports agents and executions core only; the table imports its model
for the filter and the row chips.
"""
