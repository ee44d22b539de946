"""JSON Pointer (RFC 6901): parse, build, get, set and remove.

Every function works on plain JSON values (dict, list, str, int, float, bool, None).
`set` and `remove` change the document in place: callers that must keep the
original (the corrected-output replay does) copy it first.
"""

from typing import Any


class PointerError(ValueError):
    """A pointer that is malformed, or names a place the document does not have."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


# What `get` returns for an absent place when asked not to raise.
MISSING: Any = _Missing()


def escape(token: str) -> str:
    # "~" first: escaping "/" first would turn "~1" into "~01".
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    # "~1" first, so that "~01" stays the literal "~1".
    if "~" in token:
        rest = token.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise PointerError(f"'~' must be followed by 0 or 1 in the token {token!r}.")
    return token.replace("~1", "/").replace("~0", "~")


def parse(pointer: str) -> list[str]:
    if not isinstance(pointer, str):
        raise PointerError("A JSON Pointer must be a string.")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"A JSON Pointer starts with '/' (or is empty): {pointer!r}.")
    return [unescape(t) for t in pointer[1:].split("/")]


def build(tokens) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def join(pointer: str, token) -> str:
    return f"{pointer}/{escape(str(token))}"


def parent(pointer: str) -> tuple[str, str]:
    """The parent pointer and the last (unescaped) token. The root has no parent."""
    if pointer == "":
        raise PointerError("The root has no parent.")
    head, _, last = pointer.rpartition("/")
    return head, unescape(last)


def is_within(pointer: str, ancestor: str) -> bool:
    """True when `pointer` is `ancestor` or somewhere below it."""
    return pointer == ancestor or pointer.startswith(ancestor + "/")


def overlaps(a: str, b: str) -> bool:
    return is_within(a, b) or is_within(b, a)


def _index(token: str, length: int, *, allow_end: bool, pointer: str) -> int:
    if token == "-" and allow_end:
        return length
    # RFC 6901: decimal digits, no leading zeros, no sign.
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise PointerError(f"{pointer!r}: {token!r} is not an array index.")
    index = int(token)
    limit = length if allow_end else length - 1
    if index > limit:
        raise PointerError(f"{pointer!r}: index {index} is past the end (length {length}).")
    return index


def get(doc: Any, pointer: str, default: Any = PointerError) -> Any:
    """The value at `pointer`; `default` instead of raising when the place is absent."""
    node = doc
    try:
        for token in parse(pointer):
            if isinstance(node, dict):
                if token not in node:
                    raise PointerError(f"{pointer!r}: no key {token!r}.")
                node = node[token]
            elif isinstance(node, list):
                node = node[_index(token, len(node), allow_end=False, pointer=pointer)]
            else:
                raise PointerError(
                    f"{pointer!r}: {token!r} goes inside a value that is not an object or an array."
                )
    except PointerError:
        if default is PointerError:
            raise
        return default
    return node


def exists(doc: Any, pointer: str) -> bool:
    return get(doc, pointer, MISSING) is not MISSING


def _container(doc: Any, pointer: str) -> tuple[Any, str]:
    head, last = parent(pointer)
    container = get(doc, head)
    if not isinstance(container, dict | list):
        raise PointerError(
            f"{pointer!r}: the parent {head or '(root)'!r} is not an object or an array."
        )
    return container, last


def replace(doc: Any, pointer: str, value: Any) -> Any:
    """Replace an existing value; returns the new document (the value itself at the root)."""
    if pointer == "":
        return value
    container, last = _container(doc, pointer)
    if isinstance(container, dict):
        if last not in container:
            raise PointerError(f"{pointer!r}: no key {last!r} to replace.")
        container[last] = value
    else:
        container[_index(last, len(container), allow_end=False, pointer=pointer)] = value
    return doc


def add(doc: Any, pointer: str, value: Any) -> Any:
    """JSON Patch "add": set an object key (new or not), or insert into an array."""
    if pointer == "":
        return value
    container, last = _container(doc, pointer)
    if isinstance(container, dict):
        container[last] = value
    else:
        container.insert(_index(last, len(container), allow_end=True, pointer=pointer), value)
    return doc


def remove(doc: Any, pointer: str) -> Any:
    if pointer == "":
        raise PointerError("The whole document cannot be removed.")
    container, last = _container(doc, pointer)
    if isinstance(container, dict):
        if last not in container:
            raise PointerError(f"{pointer!r}: no key {last!r} to remove.")
        del container[last]
    else:
        del container[_index(last, len(container), allow_end=False, pointer=pointer)]
    return doc


def set(doc: Any, pointer: str, value: Any) -> Any:
    """Replace when the place exists, add when only its parent does."""
    if pointer != "" and not exists(doc, pointer):
        return add(doc, pointer, value)
    return replace(doc, pointer, value)
