import pytest

from agents.validation import SchemaError, json_path, schema_errors

SCHEMA = {
    "type": "object",
    "properties": {
        "pages": {"type": "array", "items": {"type": "object", "required": ["url"]}},
        "language": {"type": "string"},
    },
}


def test_each_problem_names_its_path_in_document_order():
    problems = schema_errors(SCHEMA, {"pages": [{"url": "a"}, {}], "language": 3}, root="input")
    assert problems == [
        ("input.language", "3 is not of type 'string'"),
        ("input.pages[1]", "'url' is a required property"),
    ]


def test_a_valid_value_has_no_problems():
    assert schema_errors(SCHEMA, {"pages": [{"url": "a"}]}, root="input") == []


def test_a_broken_schema_is_the_schemas_fault():
    with pytest.raises(SchemaError):
        schema_errors({"type": "nonsense"}, {}, root="input")


def test_json_path_reads_like_code():
    assert json_path("inputs[2]", ["pages", 0, "url"]) == "inputs[2].pages[0].url"
