"""A tiny HTML tree for asserting on the detail page's markup (no parser library is installed).

`parse(html)` returns the root Node; `node.select(tag=..., id=..., cls=..., attr=...)`
finds descendants; `node.text` is the text inside. Also `unsafe_markup(html)`: what an
XSS test looks for (script tags we did not write, on* handlers, javascript: URLs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
    "source", "track", "wbr",
}  # fmt: skip


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    @property
    def text(self) -> str:
        parts = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text)
        return "".join(parts)

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def select(self, tag=None, *, id=None, cls=None, attr=None) -> list[Node]:
        found = []
        for node in self.iter():
            if tag and node.tag != tag:
                continue
            if id and node.attrs.get("id") != id:
                continue
            if cls and cls not in node.classes:
                continue
            if attr and attr not in node.attrs:
                continue
            found.append(node)
        return found

    def one(self, tag=None, **kwargs) -> Node:
        found = self.select(tag, **kwargs)
        assert len(found) == 1, f"expected one {tag or ''} {kwargs}, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), parent=self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str | bytes) -> Node:
    if isinstance(html, bytes):
        html = html.decode()
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}


def unsafe_markup(html: str | bytes) -> list[str]:
    """Everything in the page that would run script: empty for a safe page."""
    problems = []
    for node in parse(html).iter():
        if node.tag == "script" and not (node.attrs.get("src") or "").startswith("/static/"):
            problems.append(f"inline <script>: {node.text[:60]!r}")
        if node.tag in {"iframe", "object", "embed", "base"}:
            problems.append(f"<{node.tag}>")
        for name, value in node.attrs.items():
            if name.startswith("on"):
                problems.append(f"<{node.tag} {name}=...>")
            if (
                name in URL_ATTRS
                and value
                and value.strip().lower().startswith(("javascript:", "vbscript:", "data:text/html"))
            ):
                problems.append(f"<{node.tag} {name}={value[:40]!r}>")
    return problems
