"""What a browser would submit for a rendered JSON form, without a browser.

Parses the HTML with the standard library's parser and collects the fields in
document order, as a browser builds a form submission: unchecked boxes and
`<template>` contents are left out, a textarea loses the one newline that follows
its start tag, a select sends its selected option.
"""

from html.parser import HTMLParser

from django.http import QueryDict


class _Fields(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: list[list] = []
        self.in_template = 0
        self.textarea: list | None = None
        self.select: list | None = None
        self.select_first = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "template":
            self.in_template += 1
            return
        if self.in_template:
            return
        name = a.get("name")
        if tag == "input" and name is not None and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in a:
                return
            if kind in {"submit", "button"}:
                return
            self.fields.append([name, a.get("value", "")])
        elif tag == "textarea" and name is not None:
            self.textarea = [name, ""]
            self.fields.append(self.textarea)
        elif tag == "select" and name is not None and "disabled" not in a:
            self.select = [name, None]
            self.select_first = None
            self.fields.append(self.select)
        elif tag == "option" and self.select is not None:
            value = a.get("value", "")
            if self.select_first is None:
                self.select_first = value
            if "selected" in a:
                self.select[1] = value

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template -= 1
        elif tag == "textarea" and self.textarea is not None:
            if self.textarea[1].startswith("\n"):
                self.textarea[1] = self.textarea[1][1:]
            self.textarea = None
        elif tag == "select" and self.select is not None:
            if self.select[1] is None:
                self.select[1] = self.select_first or ""
            self.select = None

    def handle_data(self, data):
        if self.textarea is not None and not self.in_template:
            self.textarea[1] += data


def form_fields(html: str) -> list[list[str]]:
    parser = _Fields()
    parser.feed(html)
    return parser.fields


def leaf_name(fields, ptr: str) -> str:
    for name, _ in fields:
        if name.startswith("v|") and name.split("|", 4)[4] == ptr:
            return name
    raise KeyError(ptr)


def edit(fields, ptr: str, text: str) -> list[list[str]]:
    """The fields with one leaf's text changed, as a reviewer typing into it."""
    name = leaf_name(fields, ptr)
    return [[n, text if n == name else v] for n, v in fields]


def to_querydict(fields) -> QueryDict:
    q = QueryDict(mutable=True)
    for name, value in fields:
        q.appendlist(name, value)
    return q


def to_post(fields) -> dict:
    """For django's test client: a dict of lists keeps repeated names and their order."""
    out: dict[str, list[str]] = {}
    for name, value in fields:
        out.setdefault(name, []).append(value)
    return out
