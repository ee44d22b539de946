"""Property tests (hypothesis) over the doors that take JSON from outside: arbitrary JSON
values, strings (NUL, lone surrogates, any plane), numbers (NaN, ±Infinity, 1e400, huge
integers) and timestamps (any year, any offset) through create, steps, feedback and
OTLP/JSON. Every answer is 2xx or 4xx, never 5xx, and whatever was acknowledged reads
back as sent (issue 11).

The examples are few (max_examples) and derandomized so the suite stays fast and a
failure reproduces; run with HYPOTHESIS_PROFILE=thorough for more.
"""

import json
import math
import os
import secrets
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions.models import Execution

pytestmark = pytest.mark.django_db

EXAMPLES = 300 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 15
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text from every plane, plus what databases refuse: NUL and lone surrogates.
odd_characters = st.sampled_from(["\x00", "\udfff", "\ud800", "\ufffe", "\U0010ffff", "é"])
texts = st.text(alphabet=st.one_of(st.characters(codec=None), odd_characters), max_size=20)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e-308, 0.0, -0.0]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(texts, json_values, max_size=4)


@st.composite
def timestamps(draw) -> str:
    """ISO 8601 times of any year with any offset up to ±23:59 (Python's limit)."""
    year = draw(st.integers(min_value=1, max_value=9999))
    month = draw(st.integers(min_value=1, max_value=12))
    day = draw(st.integers(min_value=1, max_value=28))
    clock = draw(st.times()).isoformat()
    hours, minutes = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    zone = draw(
        st.sampled_from(["Z", "", f"+{hours:02}:{minutes:02}", f"-{hours:02}:{minutes:02}"])
    )
    return f"{year:04}-{month:02}-{day:02}T{clock}{zone}"


def dumps(value) -> str:
    # Python writes NaN, Infinity and lone surrogates (as \udfff escapes): exactly the
    # JSON that other clients send and PostgreSQL's jsonb refuses.
    return json.dumps(value, allow_nan=True)


def same_json(got, sent) -> bool:
    """Equal as JSON: a number is its decimal value, so the float 2.702159776422295e16
    equals the 27021597764222950 that PostgreSQL's jsonb (numeric) gives back."""
    if isinstance(sent, bool) or isinstance(got, bool):
        return got is sent
    if isinstance(sent, int | float) and isinstance(got, int | float):
        return float(got) == float(sent)
    if isinstance(sent, list) and isinstance(got, list):
        return len(got) == len(sent) and all(map(same_json, got, sent))
    if isinstance(sent, dict) and isinstance(got, dict):
        return got.keys() == sent.keys() and all(same_json(got[k], sent[k]) for k in sent)
    return got == sent


def storable(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return all(storable(v) for v in value)
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    return True


def post(api, path, body: str):
    return api.post(path, body, content_type="application/json")


@SETTINGS
@given(inputs=json_objects, metadata=json_objects, output=json_values, started=timestamps())
def test_create_answers_2xx_or_4xx_and_what_it_acknowledged_reads_back(
    api, inputs, metadata, output, started
):
    body = {"agent": "prop", "inputs": inputs, "metadata": metadata, "output": output}
    body["started_at"] = started
    response = post(api, "/api/v1/executions", dumps(body))
    assert response.status_code < 500, response.content[:500]
    if response.status_code != 201:
        assert response.status_code in (400, 413, 422)
        # Unstorable content is never acknowledged.
        return
    assert storable(inputs) and storable(metadata) and storable(output)
    read = api.get(f"/api/v1/executions/{response.json()['execution_id']}")
    assert read.status_code == 200
    got = read.json()
    assert same_json(got["input"], inputs)
    assert same_json(got["output"], output)
    # A null in metadata removes the key (metadata merges on update).
    assert same_json(got["metadata"], {k: v for k, v in metadata.items() if v is not None})


@pytest.fixture
def execution(api):
    response = post(api, "/api/v1/executions", json.dumps({"agent": "prop"}))
    return response.json()["execution_id"]


@SETTINGS
@given(
    name=texts,
    step_input=json_values,
    step_output=json_values,
    started=timestamps(),
    ended=timestamps(),
)
def test_steps_answer_2xx_or_4xx_and_acknowledged_steps_read_back(
    api, execution, name, step_input, step_output, started, ended
):
    span_id = secrets.token_hex(8)
    step = {
        "span_id": span_id,
        "name": name or "s",
        "input": step_input,
        "output": step_output,
        "started_at": started,
        "ended_at": ended,
    }
    response = post(api, f"/api/v1/executions/{execution}/steps", dumps({"steps": [step]}))
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 300:
        return
    assert storable(step_input) and storable(step_output)
    steps = api.get(f"/api/v1/executions/{execution}/steps?limit=500").json()
    found = [s for s in steps["data"] if s["span_id"] == span_id]
    assert len(found) == 1
    assert same_json(found[0]["output"], step_output)


@SETTINGS
@given(value=json_values, text=texts, rating=st.sampled_from(["up", "down", "", "meh"]))
def test_feedback_answers_2xx_or_4xx_and_reads_back(api, workspace, value, text, rating):
    created = post(
        api,
        "/api/v1/executions",
        json.dumps({"agent": "prop", "status": "completed", "output": {"total": 1}}),
    ).json()
    path = f"/api/v1/executions/{created['execution_id']}/feedback"
    body = {
        "corrections": [{"path": "/total", "value": value}],
        "note": {"rating": rating, "text": text},
    }
    response = post(api, path, dumps(body))
    assert response.status_code < 500, response.content[:500]
    if response.status_code != 201:
        return
    assert storable(value) and storable(text)
    feedback = api.get(path).json()
    assert same_json(feedback["corrected_output"]["total"], value)
    assert feedback["notes"][0]["text"] == text.strip()


def any_value():
    """OTLP/JSON AnyValue objects, well-formed or not."""
    return st.one_of(
        st.builds(lambda s: {"stringValue": s}, texts),
        st.builds(lambda b: {"boolValue": b}, st.one_of(st.booleans(), texts)),
        st.builds(lambda i: {"intValue": i}, st.one_of(st.integers(), texts)),
        st.builds(lambda d: {"doubleValue": d}, st.one_of(numbers, texts)),
        st.builds(
            lambda v: {"arrayValue": {"values": v}},
            st.lists(st.builds(lambda s: {"stringValue": s}, texts), max_size=3),
        ),
        json_values,
    )


@SETTINGS
@given(
    keys=st.lists(st.one_of(texts, st.integers(), st.none()), min_size=1, max_size=4),
    values=st.lists(any_value(), min_size=4, max_size=4),
    start=st.one_of(st.integers(min_value=-(2**80), max_value=2**80), texts),
    end=st.one_of(st.integers(min_value=0, max_value=2**80), st.just("")),
)
def test_otlp_json_answers_2xx_or_4xx_and_acknowledged_spans_are_stored(
    api, keys, values, start, end
):
    trace_id = secrets.token_hex(16)
    span = {
        "traceId": trace_id,
        "spanId": secrets.token_hex(8),
        "name": "prop",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [{"key": k, "value": v} for k, v in zip(keys, values, strict=False)],
    }
    body = dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    response = api.post("/v1/traces", body, content_type="application/json")
    assert response.status_code < 500, response.content[:500]
    if response.status_code != 200:
        return
    partial = response.json().get("partialSuccess") or {}
    if int(partial.get("rejectedSpans") or 0):
        assert not Execution.objects.filter(trace_id=trace_id).exists()
        return
    execution = Execution.objects.get(trace_id=trace_id)
    assert api.get(f"/api/v1/executions/{execution.pk}").status_code == 200
    assert str(uuid.UUID(str(execution.pk))) == str(execution.pk)
