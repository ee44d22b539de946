"""The viewer's time zone: read from the cookie app.js writes (URL-encoded), named on
the page, used for every time shown and for the date filters' whole days; one ISO
date format everywhere."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from executions import counters
from tests.factories import ExecutionFactory

from .detail_html import parse

pytestmark = pytest.mark.django_db

URL = "/executions/"


def make(agent_version, **fields):
    # The table's total comes from the counters, which factories do not keep.
    made = ExecutionFactory(agent_version=agent_version, **fields)
    counters.rebuild(agent_version.agent.workspace)
    return made


def row_ids(response) -> set[str]:
    doc = parse(response.content)
    return {tr.attrs["id"].removeprefix("row-") for tr in doc.select("tr", cls="exec-row")}


@pytest.mark.parametrize(
    ("cookie", "zone"),
    [
        ("Europe%2FBerlin", "Europe/Berlin"),  # as app.js writes it: encodeURIComponent
        ("America/New_York", "America/New_York"),  # typed by hand, not encoded
        ("UTC", "UTC"),
        ("Not%2FA_Zone", "UTC"),  # unknown: the server's zone, and the page says so
        ("%E0%A4%A", "UTC"),  # broken encoding
    ],
)
def test_the_page_names_the_zone_it_shows_times_in(alice_client, agent_version, cookie, zone):
    run = make(agent_version, created_at=datetime(2026, 7, 1, 22, 30, tzinfo=ZoneInfo("UTC")))
    alice_client.cookies["tz"] = cookie
    doc = parse(alice_client.get(URL).content)
    assert doc.one("span", id="tz-label").text.strip() == f"Times: {zone}"
    shown = datetime(2026, 7, 1, 22, 30, tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone))
    cell = doc.one("tr", id=f"row-{run.pk}").one("time")
    assert cell.text == shown.strftime("%Y-%m-%d %H:%M")


def test_an_encoded_zone_moves_the_whole_day_date_filters(alice_client, agent_version):
    berlin = ZoneInfo("Europe/Berlin")
    # 00:30 in Berlin on the 10th is still the 9th in UTC.
    early_10th = make(agent_version, created_at=datetime(2026, 3, 10, 0, 30, tzinfo=berlin))
    late_9th = make(agent_version, created_at=datetime(2026, 3, 9, 23, 30, tzinfo=berlin))
    alice_client.cookies["tz"] = "Europe%2FBerlin"
    assert row_ids(alice_client.get(f"{URL}?start=2026-03-10&end=2026-03-10")) == {
        str(early_10th.pk)
    }
    assert row_ids(alice_client.get(f"{URL}?end=2026-03-09")) == {str(late_9th.pk)}
    alice_client.cookies["tz"] = "UTC"
    assert row_ids(alice_client.get(f"{URL}?start=2026-03-10&end=2026-03-10")) == set()


def test_the_detail_page_uses_the_iso_format_in_the_viewers_zone(alice_client, agent_version):
    started = datetime(2026, 12, 4, 19, 5, 7, tzinfo=ZoneInfo("UTC"))
    run = ExecutionFactory(agent_version=agent_version, started_at=started)
    alice_client.cookies["tz"] = "America%2FNew_York"
    doc = parse(alice_client.get(run.get_absolute_url()).content)
    facts = doc.one("dl", id="run-facts")
    assert facts.select("time")[0].text == "2026-12-04 14:05:07"
    assert "/" not in facts.text.replace("</", "")
