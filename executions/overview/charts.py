"""Server-rendered SVG charts: stacked bars, lines, sparklines. No framework.

Every mark is wrapped in a link (to the executions table, filtered to exactly the
runs it counts) and carries a <title>, which browsers show on hover and screen
readers read. The same numbers are in a table beside each chart (the template).
"""

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 8, 22
PALETTE = [
    "#2563eb",
    "#d97706",
    "#059669",
    "#9333ea",
    "#dc2626",
    "#0891b2",
    "#65a30d",
    "#db2777",
    "#4b5563",
    "#7c3aed",
]


@dataclass
class Mark:
    value: float
    href: str
    title: str


def _scale(top: float) -> float:
    return top if top > 0 else 1.0


def _axis(top: float, fmt, x_labels: list[str]) -> SafeString:
    fmt = fmt or compact
    plot_h = HEIGHT - TOP - BOTTOM
    lines = []
    for frac in (0, 0.5, 1):
        y = TOP + plot_h * (1 - frac)
        lines.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                f"{y:.1f}",
                f"{y:.1f}",
                LEFT - 4,
                f"{y + 3:.1f}",
                fmt(top * frac),
            )
        )
    n = len(x_labels)
    step = max(1, n // 6)
    plot_w = WIDTH - LEFT - RIGHT
    for i in range(0, n, step):
        x = LEFT + plot_w * (i + 0.5) / n
        lines.append(
            format_html(
                '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{x:.1f}",
                HEIGHT - 6,
                x_labels[i],
            )
        )
    return mark_safe("".join(lines))


def _svg(label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg">{}</svg>',
        WIDTH,
        HEIGHT,
        label,
        body,
    )


def stacked_bars(
    label: str, x_labels: list[str], stacks: list[list[tuple[str, Mark]]], fmt=None
) -> SafeString:
    """One bar per bucket, stacked by series; `stacks[i]` is [(css class, mark)]."""
    top = _scale(max((sum(m.value for _, m in stack) for stack in stacks), default=0))
    n = max(1, len(stacks))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bar_w = max(1.0, plot_w / n * 0.8)
    rects = []
    for i, stack in enumerate(stacks):
        x = LEFT + plot_w * i / n + (plot_w / n - bar_w) / 2
        base = 0.0
        for css, mark in stack:
            if mark.value <= 0:
                continue
            h = plot_h * mark.value / top
            y = TOP + plot_h * (1 - (base + mark.value) / top)
            rects.append(
                format_html(
                    '<a href="{}"><rect class="{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}</title></rect></a>",
                    mark.href,
                    css,
                    f"{x:.1f}",
                    f"{y:.1f}",
                    f"{bar_w:.1f}",
                    f"{max(h, 0.5):.1f}",
                    mark.title,
                )
            )
            base += mark.value
    return _svg(label, mark_safe(_axis(top, fmt, x_labels) + "".join(rects)))


def lines(
    label: str,
    x_labels: list[str],
    series: list[tuple[str, str, list[Mark | None]]],
    fmt=None,
) -> SafeString:
    """One line per series (name, colour, a mark or None per bucket); points link."""
    values = [m.value for _, _, marks in series for m in marks if m is not None]
    top = _scale(max(values, default=0) * 1.05)
    n = max(1, len(x_labels))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = []
    for _name, colour, marks in series:
        points = []
        for i, mark in enumerate(marks):
            if mark is None:
                continue
            x = LEFT + plot_w * (i + 0.5) / n
            y = TOP + plot_h * (1 - mark.value / top)
            points.append((x, y, mark))
        if len(points) > 1:
            parts.append(
                format_html(
                    '<polyline class="line" fill="none" stroke="{}" points="{}"></polyline>',
                    colour,
                    " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points),
                )
            )
        parts.append(
            format_html_join(
                "",
                '<a href="{}"><circle cx="{}" cy="{}" r="3" fill="{}">'
                "<title>{}</title></circle></a>",
                ((m.href, f"{x:.1f}", f"{y:.1f}", colour, m.title) for x, y, m in points),
            )
        )
    return _svg(label, mark_safe(_axis(top, fmt, x_labels) + "".join(parts)))


def sparkline(values: list[float], label: str) -> SafeString:
    """A 7-point line, 80x20, its last point marked."""
    if not values:
        return mark_safe("")
    top = max(values) or 1
    w, h = 80, 20
    step = w / max(1, len(values) - 1)
    points = [(i * step, h - 2 - (h - 4) * v / top) for i, v in enumerate(values)]
    x, y = points[-1]
    return format_html(
        '<svg class="spark" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
        '<polyline fill="none" points="{}"></polyline><circle cx="{}" cy="{}" r="2"></circle>'
        "</svg>",
        w,
        h,
        w,
        h,
        label,
        " ".join(f"{a:.1f},{b:.1f}" for a, b in points),
        f"{x:.1f}",
        f"{y:.1f}",
    )


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def compact(value: float) -> str:
    """An axis label that fits in the margin: 1.2k, 3.4M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def legend(entries: list[tuple[str, str]]) -> SafeString:
    """Swatches for the series of a chart: [(css class or colour, label)]."""
    items = format_html_join(
        "",
        '<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" {}>'
        "</rect></svg> {}</li>",
        (
            (
                format_html('fill="{}"', css)
                if css.startswith("#")
                else format_html('class="{}"', css),
                label,
            )
            for css, label in entries
        ),
    )
    return format_html('<ul class="legend">{}</ul>', items)
