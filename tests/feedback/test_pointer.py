import pytest

from feedback import pointer
from feedback.pointer import PointerError

# RFC 6901, section 5.
RFC_DOC = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("ptr", "expected"),
    [
        ("", RFC_DOC),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_it_resolves_the_rfc_examples(ptr, expected):
    assert pointer.get(RFC_DOC, ptr) == expected


def test_escaping_round_trips_tilde_and_slash():
    for token in ["a/b", "m~n", "~1", "~0/~", "plain", ""]:
        assert pointer.unescape(pointer.escape(token)) == token
    assert pointer.escape("~1") == "~01"
    assert pointer.unescape("~01") == "~1"
    assert pointer.build(["a/b", "m~n", 3]) == "/a~1b/m~0n/3"
    assert pointer.parse("/a~1b/m~0n/3") == ["a/b", "m~n", "3"]


@pytest.mark.parametrize("bad", ["foo", "/~2", "/a~"])
def test_malformed_pointers_are_refused(bad):
    with pytest.raises(PointerError):
        pointer.parse(bad)


@pytest.mark.parametrize("ptr", ["/foo/2", "/foo/01", "/foo/-1", "/foo/x", "/nope", "/foo/0/x"])
def test_absent_places_raise_or_give_the_default(ptr):
    with pytest.raises(PointerError):
        pointer.get(RFC_DOC, ptr)
    assert pointer.get(RFC_DOC, ptr, None) is None
    assert not pointer.exists(RFC_DOC, ptr)


def test_add_inserts_into_arrays_and_sets_keys():
    doc = {"items": [1, 2], "o": {}}
    pointer.add(doc, "/items/0", 0)
    pointer.add(doc, "/items/-", 3)
    pointer.add(doc, "/items/4", 4)
    pointer.add(doc, "/o/a~1b", "x")
    assert doc == {"items": [0, 1, 2, 3, 4], "o": {"a/b": "x"}}
    with pytest.raises(PointerError):
        pointer.add(doc, "/items/9", 9)
    with pytest.raises(PointerError):
        pointer.add(doc, "/missing/key", 1)


def test_replace_and_remove_need_an_existing_place():
    doc = {"items": ["a", "b", "c"], "k": 1}
    pointer.replace(doc, "/items/1", "B")
    pointer.remove(doc, "/items/0")
    pointer.remove(doc, "/k")
    assert doc == {"items": ["B", "c"]}
    with pytest.raises(PointerError):
        pointer.replace(doc, "/k", 2)
    with pytest.raises(PointerError):
        pointer.remove(doc, "/items/2")
    with pytest.raises(PointerError):
        pointer.remove(doc, "")


def test_set_replaces_or_adds_and_the_root_is_the_value():
    doc = {"a": [1]}
    pointer.set(doc, "/a/0", 9)
    pointer.set(doc, "/a/1", 10)
    pointer.set(doc, "/b", True)
    assert doc == {"a": [9, 10], "b": True}
    assert pointer.set(doc, "", [1]) == [1]


def test_overlaps_compares_whole_tokens():
    assert pointer.overlaps("/a", "/a/b")
    assert pointer.overlaps("/a/b", "/a")
    assert pointer.overlaps("", "/a")
    assert not pointer.overlaps("/a", "/ab")
