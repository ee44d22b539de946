"""What an agent version's output JSON Schema says about one place in an output.

Only the parts a form needs: which sub-schema applies below a key or an index
(following local $refs and the first fitting anyOf/oneOf/allOf branch), the
leaf's type, format and enum, and which object properties are declared. Full
validation is left to the jsonschema package (`validate`).
"""

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import jsonschema
from jsonschema.exceptions import SchemaError

from . import pointer

_MAX_REF_HOPS = 32


def resolve(schema: Any, root: Any) -> dict:
    """Follow local `$ref`s ("#/$defs/x"); anything else (remote refs, booleans) is untyped."""
    hops = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        hops += 1
        if not ref.startswith("#") or hops > _MAX_REF_HOPS:
            return {}
        schema = pointer.get(root, unquote(ref[1:]), None)
    return schema if isinstance(schema, dict) else {}


def _branches(schema: dict, root: Any) -> list[dict]:
    out = []
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key) or []:
            resolved = resolve(branch, root)
            if resolved:
                out.append(resolved)
    return out


def child(schema: dict | None, root: Any, token: str, *, index: int | None = None) -> dict | None:
    """The sub-schema for a key of an object (index None) or an item of an array."""
    if not schema:
        return None
    schema = resolve(schema, root)
    found: Any = None
    if index is None:
        props = schema.get("properties")
        if isinstance(props, dict) and token in props:
            found = props[token]
        else:
            for pattern, sub in (schema.get("patternProperties") or {}).items():
                try:
                    if re.search(pattern, token):
                        found = sub
                        break
                except re.error:
                    continue
            if found is None and isinstance(schema.get("additionalProperties"), dict):
                found = schema["additionalProperties"]
    else:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and index < len(prefix):
            found = prefix[index]
        elif isinstance(schema.get("items"), dict):
            found = schema["items"]
        elif isinstance(schema.get("items"), list) and index < len(schema["items"]):
            found = schema["items"][index]  # draft 4-7 tuple form
    if found is not None:
        return resolve(found, root) or None
    for branch in _branches(schema, root):
        sub = child(branch, root, token, index=index)
        if sub:
            return sub
    return None


@dataclass(frozen=True, slots=True)
class Facts:
    types: frozenset[str]
    format: str = ""
    enum: tuple | None = None
    properties: tuple[str, ...] = ()
    required: frozenset[str] = frozenset()
    title: str = ""
    description: str = ""

    @property
    def nullable(self) -> bool:
        return "null" in self.types


_NO_FACTS = Facts(types=frozenset())


def facts(schema: dict | None, root: Any) -> Facts:
    """Type, format, enum and declared properties, merged over allOf/anyOf/oneOf branches."""
    if not schema:
        return _NO_FACTS
    schema = resolve(schema, root)
    types: set[str] = set()
    fmt = ""
    enum = None
    props: list[str] = []
    required: set[str] = set()
    stack, seen = [schema], 0
    while stack and seen < 64:
        s = stack.pop(0)
        seen += 1
        t = s.get("type")
        if isinstance(t, str):
            types.add(t)
        elif isinstance(t, list):
            types.update(x for x in t if isinstance(x, str))
        if "const" in s and enum is None:
            enum = (s["const"],)
        if isinstance(s.get("enum"), list) and enum is None:
            enum = tuple(s["enum"])
        if isinstance(s.get("format"), str) and not fmt:
            fmt = s["format"]
        if isinstance(s.get("properties"), dict):
            props.extend(k for k in s["properties"] if k not in props)
        if isinstance(s.get("required"), list):
            required.update(r for r in s["required"] if isinstance(r, str))
        stack.extend(_branches(s, root))
    if enum is not None:
        # A nullable enum lists null among its values; it is still one choice list.
        types.update("null" for v in enum if v is None)
    return Facts(
        types=frozenset(types),
        format=fmt,
        enum=enum,
        properties=tuple(props),
        required=frozenset(required),
        title=schema.get("title", "") if isinstance(schema.get("title"), str) else "",
        description=(
            schema.get("description", "") if isinstance(schema.get("description"), str) else ""
        ),
    )


class Resolver:
    """`facts` and `child` for one schema, remembered per sub-schema: a form of 1,000
    fields asks about the same few sub-schemas over and over.

    Keyed by id(): every sub-schema is held by the root schema for the resolver's life,
    so an id cannot be reused while it is remembered.
    """

    def __init__(self, root: Any):
        self.root = root
        self._facts: dict[int, Facts] = {}
        self._children: dict[tuple, dict | None] = {}

    def facts(self, schema: dict | None) -> Facts:
        if not schema:
            return _NO_FACTS
        key = id(schema)
        if key not in self._facts:
            self._facts[key] = facts(schema, self.root)
        return self._facts[key]

    def child(self, schema: dict | None, token: str, *, index: int | None = None) -> dict | None:
        if not schema:
            return None
        # List items share one sub-schema unless the schema lists them one by one.
        resolved = resolve(schema, self.root)
        positional = isinstance(resolved.get("prefixItems"), list) or isinstance(
            resolved.get("items"), list
        )
        if index is not None and not positional:
            key = (id(schema), "#")
        else:
            key = (id(schema), token, index)
        if key not in self._children:
            self._children[key] = child(schema, self.root, token, index=index)
        return self._children[key]


def is_date(text: str) -> bool:
    if len(text) != 10:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def is_datetime(text: str) -> bool:
    if not _DATETIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=64)
def _validator_for(schema_json: str):
    import json

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validation_errors(doc: Any, schema: dict | None) -> dict[str, list[str]]:
    """Schema violations of a document, by JSON Pointer of the place that violates.

    A broken schema is reported at the root rather than raised: a reviewer must not
    be stuck because an agent version's schema does not compile.
    """
    if not schema:
        return {}
    import json

    try:
        validator = _validator_for(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        return {"": [f"The output schema itself is invalid: {exc.message}"]}
    out: dict[str, list[str]] = {}
    for error in validator.iter_errors(doc):
        # anyOf/oneOf errors say little on their own; their best sub-error says what to fix.
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        where = pointer.build(best.absolute_path)
        out.setdefault(where, [])
        if best.message not in out[where]:
            out[where].append(best.message)
    return out
