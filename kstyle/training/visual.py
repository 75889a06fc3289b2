"""Pictures a run writes: sample grids and loss curves (Pillow only)."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
from PIL import Image, ImageDraw

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def image_grid(columns: dict[str, np.ndarray], pad: int = 2) -> Image.Image:
    """Lays out uint8 image batches side by side, one column per entry, one row per image.

    Args:
        columns: title -> uint8 array ``[N, H, W, 3]`` (all the same N, H, W).
        pad: white pixels between cells.

    Returns:
        A PIL image with a title bar over each column.
    """
    titles = list(columns)
    first = np.asarray(columns[titles[0]])
    n, h, w = first.shape[:3]
    title_h = 14
    grid = Image.new("RGB", (len(titles) * (w + pad) + pad, title_h + n * (h + pad) + pad),
                     "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(titles):
        x = pad + c * (w + pad)
        draw.text((x + 2, 1), title, fill=(0, 0, 0))
        for r, img in enumerate(np.asarray(columns[title])):
            grid.paste(Image.fromarray(img.astype(np.uint8)), (x, title_h + pad + r * (h + pad)))
    return grid


def plot_curves(csv_path: str | os.PathLike, png_path: str | os.PathLike,
                x_key: str = "step", size=(720, 420)) -> list[str]:
    """Draws every numeric column of a CSV log against ``x_key``, one panel per column.

    Returns:
        The names of the plotted columns (empty when the CSV has no rows).
    """
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return []
    keys = [k for k in rows[0] if k != x_key and _is_number(rows[0][k])]
    xs = np.array([float(r[x_key]) for r in rows])
    cols = 2
    panels = max(1, math.ceil(len(keys) / cols))
    pw, ph = size[0] // cols, size[1] // 2
    img = Image.new("RGB", (pw * cols, ph * panels), "white")
    draw = ImageDraw.Draw(img)
    for i, key in enumerate(keys):
        ys = np.array([float(r[key]) if _is_number(r[key]) else np.nan for r in rows])
        ox, oy = (i % cols) * pw, (i // cols) * ph
        _panel(draw, (ox, oy, pw, ph), xs, ys, key, PALETTE[i % len(PALETTE)], x_key)
    img.save(png_path)
    return keys


def _panel(draw, box, xs, ys, title, color, x_key):
    ox, oy, pw, ph = box
    left, top, right, bottom = ox + 50, oy + 18, ox + pw - 10, oy + ph - 22
    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    draw.text((left, oy + 3), title, fill=(0, 0, 0))
    draw.text((right - 40, bottom + 6), x_key, fill=(90, 90, 90))
    ok = np.isfinite(ys)
    if ok.sum() < 1:
        return
    x0, x1 = float(xs.min()), float(xs.max()) or 1.0
    y0, y1 = float(ys[ok].min()), float(ys[ok].max())
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    for frac in (0.0, 0.5, 1.0):
        yv = y0 + frac * (y1 - y0)
        yp = bottom - frac * (bottom - top)
        draw.text((ox + 2, yp - 5), f"{yv:.3g}", fill=(90, 90, 90))
    draw.text((left, bottom + 6), f"{x0:.0f}", fill=(90, 90, 90))
    draw.text((right - 90, bottom + 6), f"{x1:.0f}", fill=(90, 90, 90))
    span = (x1 - x0) or 1.0
    pts = [(left + (x - x0) / span * (right - left), bottom - (y - y0) / (y1 - y0) *
            (bottom - top)) for x, y in zip(xs[ok], ys[ok])]
    if len(pts) == 1:
        draw.ellipse((pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2), fill=color)
    else:
        draw.line(pts, fill=color, width=2)


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False
