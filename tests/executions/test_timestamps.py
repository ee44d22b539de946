"""Times that could be stored but never read back are refused (or clamped, for OTLP
spans) at every door (issue 11, part 2). Each case of the issue is here; on
PostgreSQL a single such row used to break the list, the export and the run's page.
"""

import csv
import io
import json
import secrets
from datetime import UTC, date, datetime

import pytest
from django.test import Client
from django.urls import reverse

from executions import timestamps
from executions.models import Execution, Step
from tests.factories import ApiKeyFactory, ExecutionFactory

pytestmark = pytest.mark.django_db

IMPOSSIBLE = [
    ("0001-01-01T00:00:00+14:00", "between 0001-01-02 and 9999-12-30"),
    ("9999-12-31T23:59:59-05:00", "between 0001-01-02 and 9999-12-30"),
    ("9999-12-31T23:00:00Z", "between 0001-01-02 and 9999-12-30"),
    ("2026-01-01T00:00:00+22:37", "offset +22:37 is beyond ±15:59"),
    ("2026-01-01T00:00:00-16:00", "offset -16:00 is beyond ±15:59"),
]


@pytest.fixture
def api(workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(api, path, body):
    return api.post(path, json.dumps(body), content_type="application/json")


def field_errors(response) -> dict:
    return {e["field"]: e["message"] for e in response.json()["errors"]}


# --- the range itself ---------------------------------------------------------------


def test_checked_converts_to_utc_and_takes_naive_times_as_utc():
    assert timestamps.checked(datetime.fromisoformat("2026-01-01T10:00:00+02:00")) == datetime(
        2026, 1, 1, 8, tzinfo=UTC
    )
    assert timestamps.checked(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "words"), IMPOSSIBLE)
def test_checked_refuses_what_cannot_round_trip(text, words):
    with pytest.raises(timestamps.OutOfRange, match=words.replace("+", r"\+")):
        timestamps.checked(datetime.fromisoformat(text))


def test_the_ends_of_the_range_are_accepted():
    assert timestamps.checked(timestamps.EARLIEST) == timestamps.EARLIEST
    assert timestamps.checked(timestamps.LATEST) == timestamps.LATEST


@pytest.mark.parametrize(
    ("ns", "expected", "moved"),
    [
        (0, None, False),
        (1_767_225_600_000_000_000, datetime(2026, 1, 1, tzinfo=UTC), False),
        (-(10**30), timestamps.EARLIEST, True),
        (10**30, timestamps.LATEST, True),
        (-62_135_596_800_000_000_000, timestamps.EARLIEST, True),  # 0001-01-01T00:00Z
    ],
)
def test_otlp_times_are_clamped_and_say_so(ns, expected, moved):
    assert timestamps.from_unix_nanos(ns) == (expected, moved)


# --- the API ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "words"), IMPOSSIBLE)
def test_create_refuses_an_impossible_started_at(api, text, words):
    response = post(api, "/api/v1/executions", {"agent": "d", "started_at": text})
    assert response.status_code == 422
    assert words in field_errors(response)["started_at"]
    assert not Execution.objects.exists()


def test_update_refuses_an_impossible_completed_at(api):
    created = post(api, "/api/v1/executions", {"agent": "d"}).json()
    response = api.patch(
        f"/api/v1/executions/{created['execution_id']}",
        json.dumps({"status": "completed", "completed_at": "9999-12-31T23:59:59-05:00"}),
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "completed_at" in field_errors(response)
    execution = Execution.objects.get()
    assert execution.completed_at is None and execution.status == "pending"


def test_steps_refuse_an_impossible_started_at(api):
    created = post(api, "/api/v1/executions", {"agent": "d"}).json()
    response = post(
        api,
        f"/api/v1/executions/{created['execution_id']}/steps",
        {"steps": [{"name": "s", "started_at": "0001-01-01T00:00:00+14:00"}]},
    )
    assert response.status_code == 422
    assert "steps[0].started_at" in field_errors(response)
    assert not Step.objects.exists()


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00+22:37", "0001-01-01T00:00:00+14:00"])
def test_list_filters_refuse_impossible_times(api, text):
    response = api.get("/api/v1/executions", {"since": text})
    assert response.status_code == 422
    assert "since" in field_errors(response)


def test_a_time_near_the_end_of_the_range_reads_back_everywhere(api, alice_client):
    response = post(
        api, "/api/v1/executions", {"agent": "d", "started_at": "9999-12-30T12:00:00+05:00"}
    )
    assert response.status_code == 201
    execution = Execution.objects.get()
    assert execution.started_at == datetime(9999, 12, 30, 7, tzinfo=UTC)
    assert api.get("/api/v1/executions").status_code == 200
    assert api.get(f"/api/v1/executions/{execution.pk}").json()["started_at"].startswith("9999")
    assert alice_client.get(reverse("executions:list")).status_code == 200
    assert alice_client.get(execution.get_absolute_url()).status_code == 200
    assert alice_client.get("/executions/export.csv").status_code == 200


# --- OTLP ---------------------------------------------------------------------------


def test_otlp_spans_with_impossible_times_are_kept_clamped_and_marked(api):
    trace, root, child = secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(8)

    def span(span_id, parent, start, end):
        return {
            "traceId": trace,
            "spanId": span_id,
            "parentSpanId": parent,
            "name": "s",
            "startTimeUnixNano": start,
            "endTimeUnixNano": end,
        }

    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "b"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            span(root, "", "1767225600000000000", "1" + "0" * 30),
                            span(child, root, "-" + "9" * 25, "1767225600000000000"),
                        ]
                    }
                ],
            }
        ]
    }
    response = api.post("/v1/traces", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    assert "partialSuccess" not in response.json() or not response.json()["partialSuccess"]
    steps = {s.span_id: s for s in Step.objects.all()}
    assert steps[child].started_at == timestamps.EARLIEST
    clamped = steps[child].attributes["runboard.time_clamped"]
    assert clamped["start_time_unix_nano"] == "-" + "9" * 25
    execution = Execution.objects.get()  # the root span
    assert execution.completed_at == timestamps.LATEST
    assert execution.request["runboard.time_clamped"]["end_time_unix_nano"] == "1" + "0" * 30
    assert api.get(f"/api/v1/executions/{execution.pk}").status_code == 200


# --- the table, its filters and the export -------------------------------------------


@pytest.mark.parametrize("query", ["end=9999-12-31", "start=9999-12-31", "start=0001-01-01"])
def test_the_table_names_an_impossible_date_beside_its_field(alice_client, query):
    response = alice_client.get(reverse("executions:list") + "?" + query)
    assert response.status_code == 200
    field = query.split("=")[0]
    assert "Enter a date between 0001-01-03 and 9999-12-29." in str(
        response.context["page"].filterset.errors[field]
    )
    assert b"Enter a date between 0001-01-03 and 9999-12-29." in response.content


def test_the_export_answers_an_impossible_date_with_a_400(alice_client, agent_version):
    ExecutionFactory(agent_version=agent_version)
    response = alice_client.get("/executions/export.csv?end=9999-12-31")
    assert response.status_code == 400
    assert b"end: Enter a date between 0001-01-03 and 9999-12-29." in response.content
    good = alice_client.get("/executions/export.csv?end=9999-12-29")
    rows = list(csv.DictReader(io.StringIO(b"".join(good.streaming_content).decode())))
    assert len(rows) == 1


def test_the_last_filterable_day_works(alice_client, agent_version):
    ExecutionFactory(agent_version=agent_version)
    assert timestamps.day_problem(date(9999, 12, 29)) is None
    response = alice_client.get(reverse("executions:list") + "?start=0001-01-03&end=9999-12-29")
    assert response.status_code == 200 and not response.context["page"].filterset.errors


def test_a_live_poll_with_an_impossible_since_stops_polling(alice_client):
    response = alice_client.get(
        reverse("executions:live") + "?since=2026-01-01T00:00:00%2B22:37",
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 286
