"""Display filters shared by Runboard's pages: durations, money, token counts, Markdown, JSON.

Kept general on purpose (the table, the detail page and the agent pages all load it):
page-specific helpers belong in their own modules.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.safestring import SafeString

from executions.detail import rendering

register = template.Library()


@register.filter
def duration(ms) -> str:
    """Milliseconds as people read them: 840 ms, 3.2 s, 4 m 05 s, 2 h 03 m."""
    if ms is None or ms == "":
        return "—"
    try:
        ms = int(ms)
    except (TypeError, ValueError):
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} m"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def _decimal(value) -> Decimal | None:
    """A number as Decimal, or None for a missing or unreadable one (shown as a dash)."""
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None


@register.filter
def usd(value) -> str:
    """Cost in dollars; a dash when unknown. Cents from a cent up ($1,234.50); below a
    cent, two significant digits, since one model call costs $0.00001 to $0.0001 and
    a fixed number of places would show it as $0.0000 (or, stripped, "$0.")."""
    amount = _decimal(value)
    if amount is None or not amount.is_finite():
        return "—"
    if amount == 0:
        return "$0"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= Decimal("0.01"):
        return f"{sign}${amount:,.2f}"
    # Two significant digits: the exponent of the second one.
    shown = amount.quantize(Decimal(1).scaleb(amount.adjusted() - 1), rounding=ROUND_HALF_UP)
    text = format(shown, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{sign}${text}"


@register.filter
def usd_exact(value) -> str:
    """Cost in dollars to its last stored digit ($0.00004095, $1,234.50): where one run
    or one step is read, a cost rounded to two significant digits would not add up."""
    amount = _decimal(value)
    if amount is None or not amount.is_finite():
        return "—"
    if amount == 0:
        return "$0"
    sign = "-" if amount < 0 else ""
    text = format(abs(amount).normalize(), "f")
    whole, _, places = text.partition(".")
    return f"{sign}${int(whole):,}.{places.ljust(2, '0')}"


@register.filter
def credits(value) -> str:
    """Credits, or a dash while they are not calculated (NULL), as seed 003 shows them."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    return f"{amount.normalize():,f}" if amount == amount.to_integral() else f"{amount:,.2f}"


@register.filter
def compact(value) -> str:
    """Big counts short: 950, 12.3k, 4.1M."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return "—"
    if abs(n) < 10_000:
        return f"{n:,}"
    if abs(n) < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


@register.filter
def pct(value, digits: int = 0) -> str:
    """A fraction (0.973) as a percentage ("97%"); a dash when missing."""
    try:
        return f"{float(value) * 100:.{int(digits)}f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter
def markdown(text) -> SafeString:
    """Markdown from agents or people, rendered and sanitized (never trusted)."""
    return rendering.render_markdown(text or "")


@register.filter
def json_view(value, max_lines: int = rendering.DEFAULT_MAX_LINES) -> SafeString:
    """A JSON value with line numbers, highlighting and collapsible nodes (see rendering)."""
    return rendering.json_html(value, max_lines=max_lines).html
