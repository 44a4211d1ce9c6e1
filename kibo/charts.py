"""Bar charts drawn on the server as SVG: readable without JavaScript, no library."""

from datetime import date
from decimal import Decimal

BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 20, 4, 100


def bar_chart(points: list[tuple[date, int | Decimal | None]]) -> dict:
    """One bar per day, scaled to the highest value; a day without a value (None) has no
    bar. What templates/partials/_bar_chart.html draws."""
    top = max((value for _, value in points if value), default=0) or 1
    bars = []
    for index, (day, value) in enumerate(points):
        height = round(CHART_HEIGHT * (value or 0) / top)
        bars.append(
            {
                "day": day,
                "value": value,
                "x": index * (BAR_WIDTH + BAR_GAP),
                "height": height,
                "y": CHART_HEIGHT - height,
            }
        )
    return {
        "bars": bars,
        "width": len(points) * (BAR_WIDTH + BAR_GAP),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "top": top,
    }
