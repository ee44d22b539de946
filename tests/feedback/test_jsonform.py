"""The JSON form on its own: render, submit as a browser would, read back the changes.

A new row is added in the browser by feedback.js, which copies a `<template>` and
fills in its placeholders; tests/browser/test_feedback_browser.py drives that script.
Here a new row's fields are written out by hand as the script posts them.
"""

import hashlib
import re

import pytest

from feedback import jsonform
from feedback.formhtml import Annotations, render

from .browserform import edit, form_fields, to_querydict

# The fingerprint an empty text field carries: BLAKE2b of no bytes, 6 bytes long.
EMPTY = "ddd9c40767f9"


def new_row(array_ptr: str, key: str, leaves: list[tuple[str, str, str, str]]) -> list:
    """What feedback.js posts for a row added to `array_ptr` under `key`: its row
    marker, the row's object, and each (kind, base, name, text) leaf."""
    row = f"{array_ptr}/{key}"
    fields = [[f"r|{array_ptr}", key], [f"c|object|||{row}", ""]]
    fields += [[f"v|{kind}|{base}|{EMPTY}|{row}/{name}", text] for kind, base, name, text in leaves]
    return fields


def template_of(html: str, array_ptr: str) -> list:
    """The fields of the `<template>` the page holds for new rows of `array_ptr`."""
    tpl_id = re.search(f'data-ptr="{re.escape(array_ptr)}" data-tpl="([^"]+)"', html).group(1)
    inner = re.search(f'<template id="{tpl_id}">(.*?)</template>', html, re.S).group(1)
    return form_fields(inner)


INVOICE = {
    "invoice_id": "INV-1",
    "total": 10.5,
    "paid": False,
    "due": "2024-03-01",
    "note": None,
    "vendor": {"name": "ACME", "address": {"city": "Leeds", "zip": "LS1"}},
    "items": [{"name": "bolt", "qty": 2}, {"name": "nut", "qty": 3}, {"name": "gear", "qty": 1}],
    "tags": ["x", "y"],
    "a/b~c": {"deep": [[1, 2], [3]]},
}

SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "total"],
    "properties": {
        "invoice_id": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "count": {"type": "integer"},
        "due": {"type": "string", "format": "date"},
        "issued_at": {"type": "string", "format": "date-time"},
        "currency": {"enum": ["EUR", "GBP", "USD"]},
        "paid": {"type": "boolean"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku"],
                "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
            },
        },
    },
}


def submit(value, edits=None, schema=None, extra=None, drop=None):
    html = str(render(jsonform.build_tree(value, output_schema=schema)))
    fields = form_fields(html)
    for ptr, text in (edits or {}).items():
        fields = edit(fields, ptr, text)
    if drop:
        fields = [f for f in fields if not drop(f)]
    fields += extra or []
    return html, jsonform.parse_form(to_querydict(fields))


def test_an_untouched_form_round_trips_to_the_same_output_and_no_changes():
    _, parsed = submit(INVOICE)
    assert parsed.errors == {}
    assert jsonform.node_value(parsed.root) == INVOICE
    assert jsonform.changes(parsed.root) == []


def test_an_untouched_schema_typed_form_has_no_changes():
    value = {
        "invoice_id": "A",
        "total": 1.0,
        "count": 3,
        "due": "2024-02-29",
        "issued_at": "2024-02-29T10:00:00Z",
        "currency": "GBP",
        "paid": True,
        "lines": [{"sku": "a", "price": 2}],
    }
    html, parsed = submit(value, schema=SCHEMA)
    assert parsed.errors == {}
    assert jsonform.changes(parsed.root) == []
    assert 'type="date"' in html and 'step="1"' in html and "<select" in html


@pytest.mark.parametrize(
    ("ptr", "text", "value"),
    [
        ("/invoice_id", "INV-2", "INV-2"),  # top-level key
        ("/vendor/address/city", "York", "York"),  # nested object key
        ("/items/1/qty", "4", 4),  # a key inside an array item
        ("/tags/0", "z", "z"),  # an array item itself
        ("/a~1b~0c/deep/1/0", "7", 7),  # escaped keys, arrays in arrays
        ("/total", "12.75", 12.75),
        ("/paid", "true", True),
        ("/note", "42", 42),  # a null accepts any JSON
        ("/note", "free text", "free text"),
    ],
)
def test_a_change_at_any_depth_is_one_replace_at_its_pointer(ptr, text, value):
    _, parsed = submit(INVOICE, {ptr: text})
    changes = jsonform.changes(parsed.root)
    assert [(c.op, c.path, c.value) for c in changes] == [("replace", ptr, value)]
    assert changes[0].base_hash == jsonform.value_hash(
        __import__("feedback.pointer", fromlist=["get"]).get(INVOICE, ptr)
    )


def test_the_same_value_typed_differently_is_not_a_change():
    _, parsed = submit(INVOICE, {"/total": "10.50"})
    assert jsonform.changes(parsed.root) == []


def test_removed_rows_become_removals_from_the_last_index_down():
    _, parsed = submit(INVOICE, extra=[["d|/items", "0"], ["d|/items", "2"]])
    changes = jsonform.changes(parsed.root)
    assert [(c.op, c.path) for c in changes] == [("remove", "/items/2"), ("remove", "/items/0")]
    assert all(c.base_path == "/items" for c in changes)
    assert jsonform.node_value(parsed.root)["items"] == [{"name": "nut", "qty": 3}]


def test_an_added_row_is_an_add_at_its_final_index_after_the_edits_and_removals():
    html = str(render(jsonform.build_tree(INVOICE)))
    fields = edit(form_fields(html), "/items/2/name", "cog")
    fields.append(["d|/items", "1"])
    fields += new_row(
        "/items", "n1", [("string", "new", "name", "washer"), ("number", "new", "qty", "9")]
    )
    parsed = jsonform.parse_form(to_querydict(fields))
    assert parsed.errors == {}
    changes = jsonform.changes(parsed.root)
    assert [(c.op, c.path, c.value) for c in changes] == [
        ("replace", "/items/2/name", "cog"),
        ("remove", "/items/1", None),
        ("add", "/items/2", {"name": "washer", "qty": 9}),
    ]
    # Replaying the changes on the original gives exactly what the form shows.
    from feedback import pointer

    doc = __import__("copy").deepcopy(INVOICE)
    for c in changes:
        doc = (
            pointer.remove(doc, c.path)
            if c.op == "remove"
            else (
                pointer.add(doc, c.path, c.value)
                if c.op == "add"
                else pointer.replace(doc, c.path, c.value)
            )
        )
    assert doc == jsonform.node_value(parsed.root)


def test_reordered_rows_replace_the_whole_list():
    html = str(render(jsonform.build_tree(INVOICE)))
    fields = form_fields(html)
    rows = [i for i, f in enumerate(fields) if f[0] == "r|/items"]
    values = [fields[i][1] for i in rows]
    for i, v in zip(rows, reversed(values), strict=True):
        fields[i] = ["r|/items", v]
    # The browser moves each row's fields with its row marker; a reorder of markers is enough.
    parsed = jsonform.parse_form(to_querydict(fields))
    changes = jsonform.changes(parsed.root)
    assert [(c.op, c.path) for c in changes] == [("replace", "/items")]
    assert changes[0].value == list(reversed(INVOICE["items"]))


def test_a_declared_property_the_output_lacks_can_be_filled_in():
    value = {"invoice_id": "A", "total": 1}
    html, parsed = submit(value, schema=SCHEMA)
    assert "jf-absent" in html
    assert jsonform.changes(parsed.root) == []  # left empty, it stays absent
    _, parsed = submit(value, {"/currency": '"EUR"', "/count": "3"}, schema=SCHEMA)
    assert [(c.op, c.path, c.value) for c in jsonform.changes(parsed.root)] == [
        ("add", "/count", 3),
        ("add", "/currency", "EUR"),
    ]


def test_a_new_row_from_the_schema_leaves_optional_fields_out_when_empty():
    value = {"invoice_id": "A", "total": 1, "lines": []}
    html = str(render(jsonform.build_tree(value, output_schema=SCHEMA)))
    fields = form_fields(html) + new_row(
        "/lines", "n1", [("string", "new", "sku", "X-1"), ("number", "absent", "price", "")]
    )
    parsed = jsonform.parse_form(to_querydict(fields))
    assert [(c.op, c.path, c.value) for c in jsonform.changes(parsed.root)] == [
        ("add", "/lines/0", {"sku": "X-1"})
    ]


@pytest.mark.parametrize(
    ("ptr", "text", "message"),
    [
        ("/total", "abc", "Enter a number"),
        ("/count", "3.5", "Enter a whole number"),
        ("/due", "2024-02-30", "Enter a date as YYYY-MM-DD"),
        ("/issued_at", "yesterday", "Enter a date and time"),
        ("/paid", "maybe", "Choose true or false"),
    ],
)
def test_wrong_types_are_errors_beside_their_field(ptr, text, message):
    value = {
        "invoice_id": "A",
        "total": 1.0,
        "count": 3,
        "due": "2024-02-29",
        "issued_at": "2024-02-29T10:00:00Z",
        "paid": True,
    }
    _, parsed = submit(value, {ptr: text}, schema=SCHEMA)
    assert list(parsed.errors) == [ptr]
    assert message in parsed.errors[ptr][0]
    html = str(render(parsed.root, notes=Annotations(errors=parsed.errors)))
    assert message.split()[0] in html and "has-error" in html
    # What the reviewer typed is still there to fix.
    assert text in html


def test_a_value_that_does_not_fit_its_schema_renders_as_itself_with_a_warning():
    html, parsed = submit({"invoice_id": "A", "total": "ten"}, schema=SCHEMA)
    assert "The schema expects number" in html
    assert jsonform.changes(parsed.root) == []


def test_multi_line_text_survives_the_browsers_crlf_and_leading_newline():
    value = {"body": "\nfirst line\nsecond line"}
    html = str(render(jsonform.build_tree(value)))
    fields = [[n, v.replace("\n", "\r\n")] for n, v in form_fields(html)]
    parsed = jsonform.parse_form(to_querydict(fields))
    assert jsonform.changes(parsed.root) == []
    assert jsonform.node_value(parsed.root) == value


def test_values_and_keys_are_escaped_in_the_html():
    html = str(render(jsonform.build_tree({'<b k="1">': "<script>alert(1)</script>"})))
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html and "&lt;b k=&quot;1&quot;&gt;" in html


def test_read_only_forms_have_no_row_tools_and_no_editable_inputs():
    html = str(render(jsonform.build_tree(INVOICE), editable=False))
    assert 'data-jf="add"' not in html and "jf-remove" not in html
    assert "readonly" in html and "disabled" in html


def test_a_scalar_output_is_one_field_at_the_root():
    _, parsed = submit("just text", {"": "better text"})
    assert [(c.op, c.path, c.value) for c in jsonform.changes(parsed.root)] == [
        ("replace", "", "better text")
    ]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda f: f[0].startswith("c|object|||") and f[0].endswith("|"),  # the root marker
        lambda f: f[0].startswith("c|object|||/vendor") and f[0].endswith("/vendor"),
    ],
)
def test_a_tampered_or_truncated_form_is_refused_clearly(tamper):
    with pytest.raises(jsonform.FormError):
        submit(INVOICE, drop=tamper)


def test_a_row_key_past_the_end_is_refused():
    with pytest.raises(jsonform.FormError, match="no row 7"):
        submit(INVOICE, extra=[["r|/tags", "7"]])


def test_one_template_per_list_shape():
    value = {"orders": [{"lines": [{"sku": "a"}]}, {"lines": [{"sku": "b"}, {"sku": "c"}]}]}
    html = str(render(jsonform.build_tree(value)))
    # One for /orders, one shared by every /orders/*/lines.
    assert html.count("<template") == 2


def blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


def test_the_forms_hashes_are_the_values_hashes():
    # Known values, worked out from the documented scheme (a tagged BLAKE2b of each
    # leaf, lists and objects hashed from their children's digests), not by the code.
    three = blake(b"i3")
    assert jsonform.value_hash(3) == three.hex() == "58834fa52f513abd"
    assert jsonform.value_hash("bolt") == blake(b"sbolt").hex()
    assert jsonform.value_hash([3, None]) == blake(b"l" + three + blake(b"n")).hex()
    item = blake(b"o" + b"\x00\x00\x00\x04name" + blake(b"sbolt") + b"\x00\x00\x00\x03qty" + three)
    assert jsonform.value_hash({"qty": 3, "name": "bolt"}) == item.hex()
    assert jsonform.text_hash("") == EMPTY == hashlib.blake2b(b"", digest_size=6).hexdigest()

    tree = jsonform.build_tree(INVOICE)
    assert tree.digest.hex() == "8d5c780c7a617e69"
    assert jsonform.find(tree, "/items").base == "12478343b01e14b2"
    assert jsonform.find(tree, "/items/1/qty").base == "58834fa52f513abd"
    assert len({jsonform.value_hash(v) for v in [1, 1.0, True, "1", [1], {"1": 1}]}) == 6
    assert jsonform.value_hash({"a": 1, "b": 2}) == jsonform.value_hash({"b": 2, "a": 1})


def test_fields_follow_the_schemas_order_then_the_outputs():
    value = {"zeta": 1, "total": 2.0, "invoice_id": "A"}
    tree = jsonform.build_tree(value, output_schema=SCHEMA)
    labels = [c.label for c in tree.children if c.base != jsonform.ABSENT]
    assert labels == ["invoice_id", "total", "zeta"]


def test_a_new_row_keeps_the_kinds_of_the_first_row_with_empty_values():
    html = str(render(jsonform.build_tree(INVOICE)))
    # feedback.js replaces @@P@@ with the list's pointer and __NEW__ with the new key.
    assert template_of(html, "/items") == [
        ["r|@@P@@", "__NEW__"],
        ["c|object|||@@P@@/__NEW__", ""],
        [f"v|string|new|{EMPTY}|@@P@@/__NEW__/name", ""],
        [f"v|number|new|{EMPTY}|@@P@@/__NEW__/qty", ""],
    ]
    template = html[html.index("<template") :]
    assert "missing" not in template and "bolt" not in template


def test_a_new_row_from_the_schema_marks_optional_fields():
    value = {"invoice_id": "A", "total": 1, "lines": [{"sku": "a", "price": 2}]}
    html = str(render(jsonform.build_tree(value, output_schema=SCHEMA)))
    template = html[html.index("<template") :]
    assert template.count(">optional</span>") == 1  # price; sku is required
