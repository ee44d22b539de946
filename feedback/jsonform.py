"""An execution's output as an editable form, and the POSTed form back as changes.

The form is a tree of nodes: objects are fieldsets, arrays are fieldsets of rows
(added, removed and reordered in the browser), leaves are inputs of their type.
Types come from the agent version's output schema when it has one, otherwise from
the values themselves.

Every leaf input carries, in its own name, what it was edited from:

    v|<kind>|<hash of the base value>|<hash of the text shown>|<JSON Pointer>

so a save can tell what the reviewer changed (the text differs from what was
shown) and refuse a change whose base is no longer the current value (another
reviewer got there first). Arrays carry `c|array|<length>|<hash>|<pointer>` and one
`r|<pointer>` per row, in the order the rows stand; a removed row is dropped from
the page or ticked in `d|<pointer>`. Keys of rows that existed are their original
indices, so the changes can be expressed in the coordinates the reviewer saw.

formhtml.render turns the tree into HTML.

Over 500 lines on purpose: building the form and reading the POST back share the
input-name encoding above, and must change together.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from executions import json_input

from . import pointer
from . import schema as sch

ABSENT = "absent"  # base of a declared property the output does not have
NEW = "new"  # base of a field inside a row added in the browser
NEW_KEY = "__NEW__"
TEMPLATE_PTR = "@@P@@"  # the array a row template is cloned into, replaced by feedback.js

MAX_DEPTH = 64
MAX_NODES = 200_000
_LONG_TEXT = 100
_INT = re.compile(r"^[+-]?\d+$")


class FormError(ValueError):
    """A POST that is not a form we rendered (tampered with, or truncated)."""


# ---------------------------------------------------------------------------- hashing


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def value_hash(value: Any) -> str:
    """A short fingerprint of a JSON value: what a form field or a save's base carries.

    Built bottom-up from the leaves (a Merkle hash), so a large list is hashed without
    serialising it; 1, 1.0, true and "1" all differ, and key order does not matter.
    """
    if value is pointer.MISSING:
        return ABSENT
    return _digest(value).hex()


def _digest(value: Any) -> bytes:
    if isinstance(value, str):
        data = b"s" + value.encode("utf-8", "surrogatepass")
    elif value is None:
        data = b"n"
    elif value is True:
        data = b"t"
    elif value is False:
        data = b"f"
    elif isinstance(value, int):
        data = b"i" + str(value).encode()
    elif isinstance(value, float):
        data = b"d" + repr(value).encode()
    elif isinstance(value, list):
        data = b"l" + b"".join(_digest(v) for v in value)
    elif isinstance(value, dict):
        parts = [b"o"]
        for key in sorted(value):
            encoded = key.encode("utf-8", "surrogatepass")
            parts += [len(encoded).to_bytes(4, "big"), encoded, _digest(value[key])]
        data = b"".join(parts)
    else:
        raise TypeError(f"Not a JSON value: {type(value).__name__}")
    return hashlib.blake2b(data, digest_size=8).digest()


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def same_value(a: Any, b: Any) -> bool:
    # `1 == 1.0 == True` in Python; in JSON they are three different corrections.
    return canonical(a) == canonical(b)


# ---------------------------------------------------------------------------- kinds


def _infer_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        if "\n" in value or "\r" in value or len(value) > _LONG_TEXT:
            return "text"
        if sch.is_date(value):
            return "date"
        if sch.is_datetime(value):
            return "datetime"
        return "string"
    return "string"


def _fits(kind: str, value: Any) -> bool:
    if value is None or value is pointer.MISSING:
        return True
    if kind in {"string", "text"}:
        return isinstance(value, str) and not (kind == "string" and ("\n" in value))
    if kind == "date":
        return isinstance(value, str) and sch.is_date(value)
    if kind == "datetime":
        return isinstance(value, str) and sch.is_datetime(value)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return kind == "null"


def leaf_kind(value: Any, facts: sch.Facts) -> tuple[str, str]:
    """The input kind for a leaf, and a warning when the value does not fit its schema."""
    if facts.enum is not None:
        return "enum", ""
    types = facts.types - {"null"}
    kind = ""
    if "boolean" in types:
        kind = "boolean"
    elif "integer" in types and "number" not in types:
        kind = "integer"
    elif "number" in types or "integer" in types:
        kind = "number"
    elif "string" in types:
        if facts.format == "date":
            kind = "date"
        elif facts.format == "date-time":
            kind = "datetime"
        elif isinstance(value, str) and ("\n" in value or len(value) > _LONG_TEXT):
            kind = "text"
        else:
            kind = "string"
    elif facts.types == {"null"}:
        kind = "null"
    if not kind:
        return _infer_kind(value), ""
    if not _fits(kind, value):
        wanted = " or ".join(sorted(facts.types))
        # Render what is there, so an untouched field round-trips unchanged.
        return _infer_kind(value), f"The schema expects {wanted}."
    return kind, ""


def to_text(value: Any, kind: str) -> str:
    if value is None or value is pointer.MISSING:
        return ""
    if kind == "enum":
        return canonical(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return canonical(value)


def parse_text(text: str, kind: str) -> tuple[Any, str]:
    """The value a reviewer typed, or an error saying what was expected."""
    if kind in {"string", "text"}:
        return text, ""
    stripped = text.strip()
    if kind == "enum":
        if stripped == "":
            return None, ""
        try:
            return json_input.loads(text), ""
        except ValueError:
            return None, "Choose one of the listed values."
    if stripped == "":
        return None, ""
    if kind == "integer":
        if _INT.match(stripped):
            return int(stripped), ""
        return None, f"Enter a whole number, not “{stripped[:40]}”."
    if kind == "number":
        if _INT.match(stripped):
            return int(stripped), ""
        try:
            number = float(stripped)
        except ValueError:
            return None, f"Enter a number (like 12.5), not “{stripped[:40]}”."
        if number != number or number in (float("inf"), float("-inf")):
            return None, "Enter a finite number."
        return number, ""
    if kind == "boolean":
        if stripped in {"true", "false"}:
            return stripped == "true", ""
        return None, "Choose true or false."
    if kind == "date":
        if sch.is_date(stripped):
            return stripped, ""
        return None, f"Enter a date as YYYY-MM-DD, not “{stripped[:40]}”."
    if kind == "datetime":
        if sch.is_datetime(stripped):
            return stripped, ""
        return None, f"Enter a date and time like 2024-03-01T10:00:00Z, not “{stripped[:40]}”."
    # A null leaf accepts any JSON (a number, true, an object...) and otherwise a string.
    try:
        # NaN, 1e400 and the like cannot be stored as numbers: they stay text.
        return json_input.loads(stripped), ""
    except ValueError:
        return text, ""


def _normalise(text: str) -> str:
    # Browsers submit textarea line breaks as CRLF whatever the page had.
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------- tree


@dataclass(slots=True, eq=False)
class Node:
    ptr: str  # the pointer in the form's names: base coordinates, or "n3" keys in new rows
    label: str
    type: str  # "object", "array" or "leaf"
    kind: str = ""
    text: str = ""
    base: str = ""  # hash of the base value, ABSENT or NEW
    base_text: str = ""  # hash of the text shown (leaves)
    length: int = 0  # rows the array had (arrays)
    children: list[Node] = field(default_factory=list)
    key: str = ""  # row key inside an array: an original index, or "n<k>" for added rows
    deleted: bool = False
    facts: sch.Facts | None = None
    warning: str = ""
    value: Any = None  # parsed leaf value
    template: Node | None = None
    digest: bytes = b""  # of the value, for nodes built from an output
    optional: bool = False  # an empty field of a new row that may stay out

    @property
    def is_new(self) -> bool:
        return self.base == NEW


def _label(token: str, index: int | None) -> str:
    return str(index + 1) if index is not None else token


def build_tree(value: Any, *, output_schema: dict | None = None) -> Node:
    """The form for a value (usually the corrected output)."""
    rs = sch.Resolver(output_schema)
    node = _build(value, output_schema, rs, "", "", None, 0)
    node.label = node.label or "output"
    return node


def _build(value, schema, rs, ptr, token, index, depth, *, fresh=False) -> Node:
    """One node and those below it. Each node's digest is built from its children's
    (as _digest would compute it), so a big list is not hashed twice."""
    if depth > MAX_DEPTH:
        raise FormError(f"The output is nested deeper than {MAX_DEPTH} levels.")
    facts = rs.facts(schema)
    label = _label(token, index)
    if isinstance(value, dict):
        node = Node(ptr=ptr, label=label, type="object", facts=facts)
        # Fields stand in the schema's order (PostgreSQL's jsonb does not keep the
        # output's own), then undeclared ones; declared properties the agent left out get
        # an empty field at their place, so a reviewer can fill them in.
        declared = set(facts.properties)
        keys = [*facts.properties, *(k for k in value if k not in declared)]
        for key in keys:
            child = _build(
                value.get(key, pointer.MISSING), rs.child(schema, key), rs,
                pointer.join(ptr, key), key, None, depth + 1, fresh=fresh,
            )  # fmt: skip
            node.children.append(child)
        if not fresh:
            parts = [b"o"]
            by_key = {c.label: c for c in node.children}
            for key in sorted(value):
                encoded = key.encode("utf-8", "surrogatepass")
                parts += [len(encoded).to_bytes(4, "big"), encoded, by_key[key].digest]
            node.digest = hashlib.blake2b(b"".join(parts), digest_size=8).digest()
        return node
    if isinstance(value, list):
        node = Node(ptr=ptr, label=label, type="array", facts=facts, length=len(value))
        for i, item in enumerate(value):
            row = _build(
                item, rs.child(schema, str(i), index=i), rs,
                pointer.join(ptr, i), str(i), i, depth + 1, fresh=fresh,
            )  # fmt: skip
            row.key = str(i)
            node.children.append(row)
        if fresh:
            node.base = NEW
        else:
            data = b"l" + b"".join(c.digest for c in node.children)
            node.digest = hashlib.blake2b(data, digest_size=8).digest()
            node.base = node.digest.hex()
        node.template = _template(value, schema, rs, depth)
        return node
    kind, warning = leaf_kind(value, facts)
    text = to_text(value, kind)
    digest = b""
    if fresh:
        base = ABSENT if value is pointer.MISSING else NEW
    elif value is pointer.MISSING:
        base = ABSENT
    else:
        digest = _digest(value)
        base = digest.hex()
    return Node(
        ptr=ptr,
        label=label,
        type="leaf",
        kind=kind,
        text=text,
        base=base,
        base_text=text_hash(text),
        facts=facts,
        warning=warning,
        value=None if value is pointer.MISSING else value,
        digest=digest,
    )


def _blank(value: Any, schema, rs, depth: int) -> Any:
    """An empty value of the same shape, for a new row."""
    facts = rs.facts(schema)
    if isinstance(value, dict) or (value is pointer.MISSING and "object" in facts.types):
        src = value if isinstance(value, dict) else {}
        out = {}
        for key in list(src) + [k for k in facts.properties if k not in src]:
            sub = rs.child(schema, key)
            if key in src or key in facts.required:
                out[key] = _blank(src.get(key, pointer.MISSING), sub, rs, depth + 1)
            # Optional declared properties stay out until someone fills them in.
        return out
    if isinstance(value, list) or (value is pointer.MISSING and "array" in facts.types):
        return []
    if isinstance(value, bool) or (value is pointer.MISSING and "boolean" in facts.types):
        return None
    if isinstance(value, str) or (value is pointer.MISSING and "string" in facts.types):
        return ""
    return None


def _template(items: list, schema, rs, depth: int) -> Node | None:
    """The row a list's "Add item" clones: the first row's shape with its values
    cleared (so a number stays a number input), or the schema's items when the list is
    empty; a plain text field when there is neither."""
    if depth > 8:
        return None
    sub = rs.child(schema, "0", index=0)
    ptr = f"{TEMPLATE_PTR}/{NEW_KEY}"
    if items:
        node = _build(items[0], sub, rs, ptr, NEW_KEY, 0, depth + 1, fresh=True)
        _clear(node)
    else:
        blank = _blank(pointer.MISSING, sub, rs, depth) if sub else ""
        node = _build(blank, sub, rs, ptr, NEW_KEY, 0, depth + 1, fresh=True)
    if node.type == "object" and rs.facts(sub).properties:
        # Optional declared properties start empty and stay out unless filled in.
        required = rs.facts(sub).required
        for c in node.children:
            if c.type == "leaf" and c.label not in required:
                c.base = ABSENT
                c.optional = True
    node.key = NEW_KEY
    node.label = "new"
    return node


def _clear(node: Node) -> None:
    if node.type == "leaf":
        node.text, node.value, node.warning = "", None, ""
        node.base_text = text_hash("")
        if node.base != ABSENT:
            node.base = NEW
    elif node.type == "array":
        node.children, node.length = [], 0
    else:
        for c in node.children:
            _clear(c)


# ---------------------------------------------------------------------------- parsing


@dataclass
class Parsed:
    root: Node
    errors: dict[str, list[str]]
    # Where each node ended up in the submitted output: final pointer -> form pointer.
    located: dict[str, str]


def parse_form(data) -> Parsed:
    """Rebuild the tree from a POSTed QueryDict; type errors are kept per field."""
    leaves: dict[str, tuple[str, str, str, str]] = {}
    containers: dict[str, tuple[str, int, str]] = {}
    rows: dict[str, list[str]] = {}
    deleted: dict[str, set[str]] = {}
    order: dict[str, list[str]] = {}

    def register(ptr: str) -> None:
        if ptr:
            order.setdefault(ptr.rpartition("/")[0], []).append(ptr)

    for count, (name, values) in enumerate(data.lists()):
        if count >= MAX_NODES:
            raise FormError("The form has too many fields.")
        tag = name[:2]
        if tag == "v|":
            parts = name.split("|", 4)
            if len(parts) != 5:
                raise FormError(f"Unreadable field name {name[:80]!r}.")
            _, kind, base, base_text, ptr = parts
            if ptr in leaves or ptr in containers:
                raise FormError(f"The field {ptr!r} appears twice.")
            leaves[ptr] = (kind, base, base_text, _normalise(values[-1]))
            register(ptr)
        elif tag == "c|":
            parts = name.split("|", 4)
            if len(parts) != 5 or parts[1] not in {"object", "array"}:
                raise FormError(f"Unreadable field name {name[:80]!r}.")
            _, ctype, length, base, ptr = parts
            if ptr in leaves or ptr in containers:
                raise FormError(f"The field {ptr!r} appears twice.")
            try:
                n = int(length or 0)
            except ValueError:
                raise FormError(f"Unreadable field name {name[:80]!r}.") from None
            containers[ptr] = (ctype, n, base)
            register(ptr)
        elif tag == "r|":
            rows[name[2:]] = values
        elif tag == "d|":
            deleted[name[2:]] = set(values)

    for ptr in [*leaves, *containers]:
        if ptr and ptr.rpartition("/")[0] not in containers:
            raise FormError(f"The field {ptr!r} is outside the form: reload it and try again.")

    errors: dict[str, list[str]] = {}
    located: dict[str, str] = {}

    def make(ptr: str, label: str, depth: int, final: str, in_new: bool) -> Node:
        if depth > MAX_DEPTH:
            raise FormError(f"The form is nested deeper than {MAX_DEPTH} levels.")
        located[final] = ptr
        if ptr in leaves:
            kind, base, base_text, text = leaves[ptr]
            node = Node(
                ptr=ptr,
                label=label,
                type="leaf",
                kind=kind,
                text=text,
                base=base,
                base_text=base_text,
            )
            value, error = parse_text(text, kind)
            node.value = value
            # An untouched field is not the reviewer's to fix, even if it would not parse.
            if error and (base == NEW or text_hash(text) != base_text):
                errors.setdefault(ptr, []).append(error)
            return node
        if ptr not in containers:
            raise FormError(f"The form has no field {ptr or '(root)'!r}: reload it and try again.")
        ctype, length, base = containers[ptr]
        node = Node(ptr=ptr, label=label, type=ctype, length=length, base=base)
        if ctype == "object":
            for child_ptr in order.get(ptr, []):
                token = pointer.unescape(child_ptr.rpartition("/")[2])
                node.children.append(
                    make(child_ptr, token, depth + 1, pointer.join(final, token), in_new)
                )
            return node
        keys = rows.get(ptr, [])
        if len(set(keys)) != len(keys):
            raise FormError(f"The list {ptr!r} has a row twice.")
        gone = deleted.get(ptr, set())
        position = 0
        for key in keys:
            if key.isdigit():
                if in_new or int(key) >= length:
                    raise FormError(f"The list {ptr!r} has no row {key}.")
            elif not key.startswith("n"):
                raise FormError(f"Unreadable row {key!r} in {ptr!r}.")
            child_ptr = pointer.join(ptr, key)
            row = make(
                child_ptr,
                str(position + 1),
                depth + 1,
                pointer.join(final, position),
                in_new or not key.isdigit(),
            )
            row.key = key
            if key in gone:
                row.deleted = True
                row.label = "removed"
            else:
                position += 1
            node.children.append(row)
        return node

    if "" not in leaves and "" not in containers:
        raise FormError("The form is incomplete: reload it and try again.")
    root = make("", "", 0, "", False)
    return Parsed(root=root, errors=errors, located=located)


def node_value(node: Node) -> Any:
    """What the node holds now, as JSON (pointer.MISSING for an absent field left empty)."""
    if node.type == "leaf":
        if node.base == ABSENT and node.text == "":
            return pointer.MISSING
        return node.value
    if node.type == "object":
        out = {}
        for c in node.children:
            v = node_value(c)
            if v is not pointer.MISSING:
                out[pointer.unescape(c.ptr.rpartition("/")[2])] = v
        return out
    return [node_value(c) for c in node.children if not c.deleted]


# ---------------------------------------------------------------------------- changes


@dataclass
class Change:
    """One correction to make, in the order given.

    `path` is where it applies when the changes before it have been applied;
    `base_path` and `base_hash` say what the reviewer saw there before any of them
    (None: do not check). `field` is the form field or API item errors belong to.
    """

    op: str
    path: str
    value: Any = None
    base_path: str = ""
    base_hash: str | None = None
    field: str = ""
    comment: str = ""  # this change's own, over the save's comment


def changes(root: Node) -> list[Change]:
    out: list[Change] = []
    _changes(root, out)
    return out


def _changes(node: Node, out: list[Change]) -> None:
    if node.type == "leaf":
        if node.base == NEW or text_hash(node.text) == node.base_text:
            return
        value = node_value(node)
        if node.base == ABSENT:
            if value is not pointer.MISSING:
                out.append(Change("add", node.ptr, value, node.ptr, ABSENT, node.ptr))
            return
        if value_hash(value) != node.base:
            out.append(Change("replace", node.ptr, value, node.ptr, node.base, node.ptr))
        return
    if node.type == "object":
        for c in node.children:
            _changes(c, out)
        return
    existing = [c for c in node.children if c.key.isdigit()]
    kept = [int(c.key) for c in existing if not c.deleted]
    if kept != sorted(kept):
        out.append(Change("replace", node.ptr, node_value(node), node.ptr, node.base, node.ptr))
        return
    for c in existing:
        if not c.deleted:
            _changes(c, out)
    for i in sorted(set(range(node.length)) - set(kept), reverse=True):
        out.append(Change("remove", pointer.join(node.ptr, i), None, node.ptr, node.base, node.ptr))
    position = 0
    for c in node.children:
        if c.deleted:
            continue
        if not c.key.isdigit():
            out.append(
                Change(
                    "add",
                    pointer.join(node.ptr, position),
                    node_value(c),
                    node.ptr,
                    node.base,
                    c.ptr,
                )
            )
        position += 1


def find(root: Node, ptr: str) -> Node | None:
    """The node of a form pointer, walking down by the pointer's own prefixes."""
    node = root
    while node.ptr != ptr:
        for c in node.children:
            if pointer.is_within(ptr, c.ptr):
                node = c
                break
        else:
            return None
    return node
