"""A shareable chart of a room's event (PNG, 1200x630, the size link previews
use): orders paid per minute as bars, listeners per minute as a line, the
room's title and the totals. Drawn with Pillow off the event loop; only the
report's aggregate figures go in, never buyer data."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 630
MARGIN_X, TOP, BOTTOM = 80, 170, 80
BACKGROUND = (250, 250, 252)
INK = (28, 30, 38)
MUTED = (110, 114, 128)
GRID = (226, 228, 234)
BARS = (234, 88, 12)  # orders paid
LINE = (37, 99, 235)  # listeners


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _money(revenue: dict[str, int]) -> str:
    if not revenue:
        return "no revenue"
    return ", ".join(f"{amount / 100:,.2f} {cur}" for cur, amount in revenue.items())


def totals_line(rep: dict[str, Any]) -> str:
    o, lst = rep["orders"], rep["listeners"]
    return (
        f"{o['paid']} orders paid  ·  {_money(rep['revenue'])}  ·  "
        f"peak {lst['peak']} listeners, {lst['unique']} unique  ·  "
        f"conversion {rep['conversion']['overall']:.1%}"
    )


def _series(rep: dict[str, Any]) -> list[dict[str, Any]]:
    minutes = rep["conversion"]["per_minute"]
    return minutes[-60:]  # the last hour at most: bars stay readable


def _plot(draw: ImageDraw.ImageDraw, series: list[dict[str, Any]]) -> None:
    left, right, top, bottom = MARGIN_X, WIDTH - MARGIN_X, TOP, HEIGHT - BOTTOM
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        draw.line([(left, y), (right, y)], fill=GRID, width=1)
    if not series:
        draw.text((left, (top + bottom) / 2), "no minutes yet", fill=MUTED, font=_font(28))
        return
    top_orders = max(1, *(m["buyers"] for m in series))
    top_listeners = max(1, *(m["listeners"] for m in series))
    step = (right - left) / len(series)
    points = []
    for i, m in enumerate(series):
        x0 = left + i * step
        h = (bottom - top) * m["buyers"] / top_orders
        draw.rectangle([x0 + step * 0.15, bottom - h, x0 + step * 0.85, bottom], fill=BARS)
        points.append((x0 + step / 2, bottom - (bottom - top) * m["listeners"] / top_listeners))
    if len(points) > 1:
        draw.line(points, fill=LINE, width=4, joint="curve")
    for x, y in points:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=LINE)
    small = _font(18)
    draw.text((left, bottom + 12), f"max {top_orders} orders / min", fill=BARS, font=small)
    draw.text((right - 260, bottom + 12), f"max {top_listeners} listeners", fill=LINE, font=small)


def render(title: str, rep: dict[str, Any]) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN_X, 40), title[:60], fill=INK, font=_font(44))
    draw.text((MARGIN_X, 100), totals_line(rep), fill=MUTED, font=_font(24))
    draw.rectangle([MARGIN_X, 140, MARGIN_X + 16, 156], fill=BARS)
    draw.text((MARGIN_X + 24, 138), "orders paid per minute", fill=INK, font=_font(18))
    draw.rectangle([MARGIN_X + 290, 146, MARGIN_X + 320, 150], fill=LINE)
    draw.text((MARGIN_X + 328, 138), "listeners per minute", fill=INK, font=_font(18))
    _plot(draw, _series(rep))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


async def render_async(title: str, rep: dict[str, Any]) -> bytes:
    return await asyncio.to_thread(render, title, rep)
