"""Reading JSON that comes from outside (API bodies, OTLP/JSON, the dashboard's JSON
text areas) into values the database can store: the one place that knows what
PostgreSQL's jsonb and text refuse, so every door refuses it the same way, with the
path of the value at fault, before anything is written.

Refused: NUL characters and lone UTF-16 surrogates in any string or key, NaN,
Infinity and numbers too large for a double (`1e400`), and nesting deeper than
MAX_JSON_DEPTH. Python's json module reads all of these; orjson (tried first, being
faster) refuses most of them already.

Imports only the standard library, orjson and Django settings.
"""

import json
import math
import re
from typing import Any

import orjson
from django.conf import settings

# JSON escapes of NUL and of UTF-16 surrogates: only a body holding one needs its
# strings checked one by one.
UNSTORABLE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


class JsonInputError(ValueError):
    """What is wrong and where (`$.input.pages[2] contains ...`), as one message;
    `path` is the place alone, when there is one."""

    def __init__(self, message: str, path: str = ""):
        self.path = path
        super().__init__(message)


class _NonFinite:
    """Stands in for NaN, Infinity or 1e400 while parsing, so the walk can say where."""

    def __init__(self, text: str):
        self.text = text


def max_depth() -> int:
    return getattr(settings, "RUNBOARD_MAX_JSON_DEPTH", 64)


def loads(data: bytes | str, *, depth: int | None = None, texts: bool = True) -> Any:
    """Parse and check a JSON document; JsonInputError says what and where.

    `texts=False` leaves NUL characters and lone surrogates to the caller (OTLP drops
    them from telemetry rather than refusing a batch); `depth=0` sets no depth limit
    beyond the parser's own (which then answers "nested deeper than" too)."""
    depth = max_depth() if depth is None else depth
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = orjson.loads(raw)
        odd = False
    except orjson.JSONDecodeError:
        value, odd = _python_loads(raw)
    unstorable = texts and b"\\u" in raw and UNSTORABLE.search(raw) is not None
    deep = depth and raw.count(b"[") + raw.count(b"{") > depth
    if odd or unstorable or deep:
        check(value, depth=depth or math.inf, texts=unstorable)
    return value


def _python_loads(raw: bytes) -> tuple[Any, bool]:
    # The standard parser reads what orjson refuses (integers past 64 bits, UTF-16
    # bodies) and words its errors the way people know them.
    found = []

    def constant(name):
        found.append(name)
        return _NonFinite(name)

    def number(text):
        value = float(text)
        if math.isinf(value):
            found.append(text)
            return _NonFinite(text)
        return value

    try:
        value = json.loads(raw, parse_constant=constant, parse_float=number)
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"the body is not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        # Chained, so a form can word the parser's line and column its own way.
        raise JsonInputError(f"malformed JSON: {exc}") from exc
    except RecursionError:
        raise JsonInputError(f"JSON nested deeper than {max_depth()} levels") from None
    return value, bool(found)


def _path(where) -> str:
    parts = []
    while where is not None:
        where, part = where
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "$" + "".join(reversed(parts))


def check(value, *, depth: int | None = None, texts: bool = True) -> None:
    """Refuse what cannot be stored in a value already parsed (or built in Python):
    nesting past `depth`, non-finite numbers and, when `texts`, NUL characters and
    lone surrogates. Paths are kept as (parent, key) pairs and spelt out only for
    the error message."""
    depth = max_depth() if depth is None else depth
    stack = [(value, 1, None)]
    while stack:
        item, level, where = stack.pop()
        if level > depth:
            path = _path(where)
            raise JsonInputError(f"JSON nested deeper than {depth} levels at {path}", path)
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            _check_leaf(item, where, texts)
            continue
        for key, child in children:
            if texts and isinstance(key, str):
                _check_text(key, (where, key), "a key")
            if isinstance(child, dict | list):
                stack.append((child, level + 1, (where, key)))
            else:
                _check_leaf(child, (where, key), texts)


def _check_leaf(item, where, texts: bool) -> None:
    if isinstance(item, _NonFinite) or (isinstance(item, float) and not math.isfinite(item)):
        path = _path(where)
        text = item.text if isinstance(item, _NonFinite) else str(item)
        raise JsonInputError(
            f"{path} is {text}, which is not a number the database can store (NaN, "
            "Infinity and numbers beyond ±1.8e308 are refused)",
            path,
        )
    if texts and isinstance(item, str):
        _check_text(item, where)


def _check_text(text: str, where, what: str = "") -> None:
    if "\x00" in text:
        path = _path(where)
        place = f"{path} ({what})" if what else path
        raise JsonInputError(
            f"{place} contains a NUL (\\u0000) character, which cannot be stored", path
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        path = _path(where)
        place = f"{path} ({what})" if what else path
        raise JsonInputError(
            f"{place} contains a lone UTF-16 surrogate, which is not text", path
        ) from None
