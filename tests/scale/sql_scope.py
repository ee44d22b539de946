"""Which tables an SQL statement reads or writes without a `workspace_id` filter.

Citus routes a statement to one shard when every distributed table in it is restricted
to one value of the distribution column, so the check is per *instance* of a table
(each FROM/JOIN of it, in each subquery): that instance must be compared with a value
(`"t"."workspace_id" = %s`, `IN (%s, ...)`, `= ANY(%s)`), or equated with the
`workspace_id` of an instance that is (a co-located join). An INSERT must name the
column. A filter inside an OR is taken as a filter (Django only ORs what the selectors
put there); the value itself is not checked here: tests/agents/test_scoping.py shows it
is the request's workspace.

It reads the SQL Django hands to the driver (`%s` placeholders, not the values), so a
string literal never holds a placeholder or a parenthesis that a value brought in.
Not a general SQL parser: it knows the shapes Django and this project's raw SQL emit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STRING = re.compile(r"'(?:[^']|'')*'")
_NAME = r'(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)'
_KEYWORDS = {
    "where", "on", "inner", "left", "right", "full", "outer", "cross", "join", "group",
    "order", "limit", "offset", "union", "for", "set", "values", "returning", "using",
    "as", "having", "window", "natural", "lateral", "except", "intersect", "fetch",
}  # fmt: skip
# FROM "t" [AS] [alias], JOIN "t" [alias], UPDATE "t", DELETE FROM "t", INSERT INTO "t"
_TABLE_REF = re.compile(
    rf"\b(FROM|JOIN|UPDATE|INTO)\s+(?P<table>{_NAME})(?:\s+(?:AS\s+)?(?P<alias>{_NAME}))?",
    re.IGNORECASE,
)
_COLUMN = r'"?workspace_id"?'
_VALUE = r"(?:%s|\?|-?\d+|\$\d+)"
_FILTER = re.compile(
    rf"(?:(?P<alias>{_NAME})\s*\.\s*)?{_COLUMN}\s*"
    rf"(?:=\s*{_VALUE}|IN\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)|=\s*ANY\s*\(\s*{_VALUE}\s*\))",
    re.IGNORECASE,
)
_VALUE_FIRST = re.compile(rf"{_VALUE}\s*=\s*(?:(?P<alias>{_NAME})\s*\.\s*)?{_COLUMN}", re.I)
# a.workspace_id = b.workspace_id; Django wraps an OuterRef in parentheses.
_JOIN_EQ = re.compile(
    rf"(?P<a>{_NAME})\s*\.\s*{_COLUMN}\s*=\s*\(?\s*(?P<b>{_NAME})\s*\.\s*{_COLUMN}",
    re.IGNORECASE,
)
# INSERT INTO t (...) and COPY t (...) FROM STDIN: the column list must name workspace_id.
_INSERT = re.compile(
    rf"^\s*(?:INSERT(?:\s+OR\s+IGNORE)?\s+INTO|COPY)\s+(?P<table>{_NAME})\s*\((?P<columns>[^)]*)\)",
    re.I,
)


def _bare(name: str | None) -> str | None:
    return name.strip('"').lower() if name else None


@dataclass
class _Scope:
    text: str
    parent: _Scope | None
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> table

    def resolve(self, alias: str) -> tuple[_Scope, str] | None:
        scope = self
        while scope is not None:
            if alias in scope.aliases:
                return scope, alias
            scope = scope.parent
        return None


def _scopes(sql: str) -> list[_Scope]:
    """Splits at each parenthesised SELECT: each subquery is a scope whose text leaves
    out its own subqueries; aliases resolve from the innermost scope outwards."""
    scopes: list[_Scope] = []

    def build(text: str, parent: _Scope | None) -> None:
        own, children, depth, start = [], [], 0, 0
        for i, ch in enumerate(text):
            if depth:
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if not depth:
                    own.append("(SUBQUERY)")
                    children.append(text[start + 1 : i])
            elif ch == "(" and re.match(r"\(\s*(SELECT|WITH)\b", text[i:], re.I):
                start, depth = i, 1
            else:
                own.append(ch)
        scope = _Scope("".join(own), parent)
        for match in _TABLE_REF.finditer(scope.text):
            table = _bare(match["table"])
            alias = _bare(match["alias"])
            scope.aliases[table if alias is None or alias in _KEYWORDS else alias] = table
        scopes.append(scope)
        for child in children:
            build(child, scope)

    build(sql, None)
    return scopes


def unscoped_tables(sql: str, distributed: set[str]) -> set[str]:
    """The distributed tables `sql` touches with some instance not filtered by workspace."""
    sql = _STRING.sub("''", sql)
    insert = _INSERT.match(sql)
    if insert:
        table = _bare(insert["table"])
        columns = {_bare(c.strip()) for c in insert["columns"].split(",")}
        missing = {table} if table in distributed and "workspace_id" not in columns else set()
        # INSERT ... SELECT: the SELECT's own tables are checked like any other.
        rest = sql[insert.end() :]
        return missing | (
            unscoped_tables(rest, distributed) if re.search(r"\bFROM\b", rest, re.I) else set()
        )

    scopes = _scopes(sql)
    instances = {(id(s), alias): (s, table) for s in scopes for alias, table in s.aliases.items()}
    filtered: set[tuple[int, str]] = set()
    equal: list[tuple[tuple[int, str], tuple[int, str]]] = []

    def key(scope: _Scope, alias: str | None) -> tuple[int, str] | None:
        if alias is None:
            # Unqualified: the scope's only table (raw SQL such as "WHERE workspace_id = %s").
            own = list(scope.aliases)
            return (id(scope), own[0]) if len(own) == 1 else None
        found = scope.resolve(_bare(alias))
        return (id(found[0]), found[1]) if found else None

    for scope in scopes:
        for pattern in (_FILTER, _VALUE_FIRST):
            for match in pattern.finditer(scope.text):
                k = key(scope, match["alias"])
                if k:
                    filtered.add(k)
        for match in _JOIN_EQ.finditer(scope.text):
            a, b = key(scope, match["a"]), key(scope, match["b"])
            if a and b:
                equal.append((a, b))
    changed = True
    while changed:
        changed = False
        for a, b in equal:
            if (a in filtered) != (b in filtered):
                filtered |= {a, b}
                changed = True
    return {
        table for k, (_, table) in instances.items() if table in distributed and k not in filtered
    }
