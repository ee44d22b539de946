from decimal import Decimal

import pytest

from executions.templatetags.runboard import credits, duration, usd, usd_exact


@pytest.mark.parametrize(
    ("ms", "shown"),
    [(None, "—"), ("x", "—"), (840, "840 ms"), (3200, "3.2 s"), (45_000, "45 s"),
     (245_000, "4 m 05 s"), (7_380_000, "2 h 03 m"), (200 * 3_600_000, "8 d 08 h")],
)  # fmt: skip
def test_duration_reads_like_people_say_it(ms, shown):
    assert duration(ms) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "—"), ("", "—"), ("abc", "—"), (0, "$0"), (Decimal("0.0042"), "$0.0042"),
     (Decimal("12.5"), "$12.50"), (Decimal("1234.5"), "$1,234.50")],
)  # fmt: skip
def test_usd_keeps_sub_cent_costs_visible(value, shown):
    assert usd(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Decimal("0.000041"), "$0.000041"), (Decimal("0.00004095"), "$0.000041"),
     (Decimal("0.00001"), "$0.00001"), (Decimal("0.000000150000"), "$0.00000015"),
     (Decimal("0.0000999"), "$0.0001"), (Decimal("0.00999"), "$0.01"),
     (Decimal("0.000041000000"), "$0.000041"), (Decimal("-0.0042"), "-$0.0042"),
     (Decimal("NaN"), "—"), (Decimal("Infinity"), "—"), ("0.00002", "$0.00002")],
)  # fmt: skip
def test_usd_shows_a_model_calls_cost_with_significant_digits(value, shown):
    assert usd(value) == shown
    assert not shown.endswith(".")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Decimal("0.000040950000"), "$0.00004095"), (Decimal("0.000000150000"), "$0.00000015"),
     (Decimal("12.5"), "$12.50"), (Decimal("1234.500000000000"), "$1,234.50"),
     (Decimal("100"), "$100.00"), (Decimal("0.0002424"), "$0.0002424"), (0, "$0"),
     (Decimal("-0.00004095"), "-$0.00004095"), (Decimal("NaN"), "—"), (None, "—")],
)  # fmt: skip
def test_usd_exact_shows_a_cost_to_its_last_digit(value, shown):
    """The run's and the step's own facts: $0.00004095 stays $0.00004095."""
    assert usd_exact(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "—"), ("nope", "—"), (Decimal("3"), "3"), (Decimal("1.5"), "1.50"),
     (Decimal("2500"), "2,500")],
)  # fmt: skip
def test_credits_show_a_dash_until_calculated(value, shown):
    assert credits(value) == shown


def test_elapsed_is_the_duration_once_ended_and_the_time_so_far_before(monkeypatch):
    from datetime import UTC, datetime, timedelta

    from executions import models
    from executions.models import Execution

    # The clock is fixed, so "the time so far" is exact.
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(models.timezone, "now", lambda: now)
    running = Execution(started_at=now - timedelta(seconds=5, milliseconds=250))
    assert running.elapsed_ms == 5250
    assert Execution(started_at=now, duration_ms=1234).elapsed_ms == 1234
    assert Execution(started_at=now + timedelta(seconds=1)).elapsed_ms == 0  # clock skew
    assert Execution().elapsed_ms is None
