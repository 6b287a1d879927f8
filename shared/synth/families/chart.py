"""Charts: bar charts (error bars, hatching, significance brackets) and line charts with markers.

Drawn data, not photographed content: a forger does not copy them, but their repeated tick labels,
markers and hatching are exactly the genuinely repeated content that fools a naive matcher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from shared.synth import text
from shared.synth.figure import Negative, Panel

COLOURS = [(220, 40, 40), (30, 160, 60), (40, 80, 200), (240, 150, 30), (120, 60, 170), (0, 150, 170)]


@dataclass(frozen=True)
class TextStyle:
    """Typeface and size shared by every label of a figure."""

    face: str
    bold_face: str
    size: int


def _nice_step(span: float) -> float:
    raw = span / 5
    power = 10 ** np.floor(np.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if mult * power >= raw:
            return float(mult * power)
    return float(10 * power)


def _fmt(value: float, step: float) -> str:
    return f"{value:.0f}" if step >= 1 else f"{value:.1f}" if step >= 0.1 else f"{value:.2f}"


def render_chart(rng: np.random.Generator, h: int, w: int, style: TextStyle, gray: bool = False) -> Panel:
    kind = "bar" if rng.random() < 0.65 else "line"
    size = max(7, int(style.size * rng.uniform(0.75, 1.0)))
    image = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    label = str(rng.choice(text.Y_AXIS))
    label_h, _ = text.text_size(label, style.face, size, 90)[::-1]
    left = int(label_h + size * 3.2)
    sign_rows = int(rng.choice([1, 2])) if kind == "bar" and rng.random() < 0.45 else 0
    bottom = int(size * (2.2 if kind == "bar" else 3.4)) + int(sign_rows * size * 1.4)
    top, right = int(size * 1.5), int(size * 0.8)
    if w - left - right < 30 or h - top - bottom < 30:
        left, bottom, top, right = int(w * 0.2), int(h * 0.2), int(h * 0.05), int(w * 0.03)
    x0, y0, x1, y1 = left, top, w - right, h - bottom
    line_w = max(1, size // 10)
    n_groups = int(rng.integers(2, 7)) if kind == "bar" else int(rng.integers(5, 10))
    n_series = int(rng.integers(1, 5)) if kind == "bar" else int(rng.integers(1, 4))
    base = rng.uniform(0.3, 1.0, (n_series, n_groups))
    values = base * float(10 ** rng.integers(0, 3)) * rng.uniform(1, 5)
    errors = values * rng.uniform(0.03, 0.2, values.shape)
    vmax = float((values + errors).max()) * 1.15
    step = _nice_step(vmax)
    vmax = step * np.ceil(vmax / step)

    def ypix(v: float) -> float:
        return y1 - (y1 - y0) * v / vmax

    labels: list[tuple[str, int, int, int]] = []  # text, y, x, angle (drawn after the shapes)
    tick = max(2, size // 3)
    for v in np.arange(0, vmax + step / 2, step):
        yy = round(ypix(v))
        draw.line([(x0 - tick, yy), (x0, yy)], fill=(0, 0, 0), width=line_w)
        tw = text.text_size(_fmt(v, step), style.face, size)[1]
        labels.append((_fmt(v, step), yy - size // 2, x0 - tick - 3 - tw, 0))
    labels.append(
        (label, (y0 + y1) // 2 - text.text_size(label, style.face, size, 90)[0] // 2, max(0, x0 - int(size * 3)), 90)
    )
    fills = _series_fills(rng, n_series, gray)
    negatives: list[Negative] = []
    slot = (x1 - x0) / n_groups
    if kind == "bar":
        bar_w = slot * float(rng.uniform(0.55, 0.85)) / n_series
        for g in range(n_groups):
            for s in range(n_series):
                bx0 = x0 + slot * g + (slot - bar_w * n_series) / 2 + s * bar_w
                top_y = ypix(values[s, g])
                _bar(draw, (int(bx0), int(top_y), int(bx0 + bar_w) - 1, y1), fills[s], line_w)
                cx = int(bx0 + bar_w / 2)
                err = ypix(values[s, g] + errors[s, g])
                draw.line([(cx, int(err)), (cx, int(top_y))], fill=(0, 0, 0), width=line_w)
                draw.line(
                    [(cx - int(bar_w / 4), int(err)), (cx + int(bar_w / 4), int(err))], fill=(0, 0, 0), width=line_w
                )
            if sign_rows:  # a treatment table under the axis: one + or − per bar group and row
                for r in range(sign_rows):
                    sign = "+" if rng.random() < 0.5 else "−"
                    tw = text.text_size(sign, style.face, size)[1]
                    labels.append((sign, y1 + tick + 2 + int(r * size * 1.4), int(x0 + slot * (g + 0.5) - tw / 2), 0))
                continue
            name = str(rng.choice(text.CONDITIONS)) if rng.random() < 0.7 else f"{g + 1}"
            tw = text.text_size(name, style.face, size)[1]
            if tw > 0.95 * slot:  # never let group names run into each other
                name = f"{g + 1}"
                tw = text.text_size(name, style.face, size)[1]
            if tw <= 0.95 * slot:
                labels.append((name, y1 + tick + 2, int(x0 + slot * (g + 0.5) - tw / 2), 0))
        for r in range(sign_rows):
            title = str(rng.choice(["LPS", "DEX", "siRNA", "Rapa", "TNF-α", "Dox"]))
            _th, tw = text.text_size(title, style.face, size)
            labels.append((title, y1 + tick + 2 + int(r * size * 1.4), max(0, x0 - tw - size), 0))
        if rng.random() < 0.6:
            _significance(rng, draw, labels, x0, slot, ypix, values + errors, style, size, line_w)
    else:
        xs = [int(x0 + slot * (g + 0.5)) for g in range(n_groups)]
        for s in range(n_series):
            colour = fills[s]["edge"]
            pts = [(x, int(ypix(values[s, g]))) for g, x in enumerate(xs)]
            draw.line(pts, fill=colour, width=max(1, line_w + 1))
            for g, (x, y) in enumerate(pts):
                e = int(abs(ypix(values[s, g] + errors[s, g]) - y))
                draw.line([(x, y - e), (x, y + e)], fill=colour, width=line_w)
                _marker(draw, x, y, max(3, size // 4), s, colour)
        unit = max(1, int(rng.integers(1, 4)))
        for g, x in enumerate(xs):
            draw.line([(x, y1), (x, y1 + tick)], fill=(0, 0, 0), width=line_w)
            tw = text.text_size(str(g * unit), style.face, size)[1]
            labels.append((str(g * unit), y1 + tick + 2, x - tw // 2, 0))
        name = str(rng.choice(text.X_AXIS))
        tw = text.text_size(name, style.face, size)[1]
        labels.append((name, y1 + tick + size + 6, (x0 + x1) // 2 - tw // 2, 0))
    draw.line([(x0, y0), (x0, y1)], fill=(0, 0, 0), width=line_w)
    draw.line([(x0, y1), (x1, y1)], fill=(0, 0, 0), width=line_w)
    if rng.random() < 0.2:
        draw.line([(x0, y0), (x1, y0)], fill=(0, 0, 0), width=line_w)
        draw.line([(x1, y0), (x1, y1)], fill=(0, 0, 0), width=line_w)
    if n_series >= 2 and rng.random() < 0.7:
        _legend(rng, draw, labels, fills, kind, (x0, y0, x1, y1), size)
    canvas = np.asarray(image).copy()
    for label_text, ly, lx, angle in labels:
        text.draw(canvas, label_text, ly, lx, style.face, size, angle=angle)
    negatives += _repeated_tick_labels(labels, canvas, style, size)
    return Panel(canvas, "chart", [], negatives)


def _series_fills(rng: np.random.Generator, n: int, gray: bool) -> list[dict]:
    scheme = rng.random()
    fills = []
    for s in range(n):
        if gray or scheme < 0.5:
            shade = [255, 140, 0, 200][s % 4]
            fills.append({"fill": (shade,) * 3, "edge": (0, 0, 0), "hatch": s == 3 or (s == 1 and rng.random() < 0.3)})
        elif scheme < 0.75:
            c = COLOURS[s % len(COLOURS)]
            fills.append({"fill": (255, 255, 255), "edge": c, "hatch": False})
        else:
            c = COLOURS[s % len(COLOURS)]
            fills.append({"fill": c, "edge": (0, 0, 0), "hatch": False})
    return fills


def _legend(rng, draw, labels, fills, kind: str, plot, size: int) -> None:
    """Series names with their swatch or marker in the plot's top-right corner."""
    x0, y0, x1, _ = plot
    names = [str(n) for n in rng.choice(text.CONDITIONS, size=len(fills), replace=False)]
    swatch = max(6, int(size * 0.8))
    width = max(text.text_size(n, "sans", size)[1] for n in names) + swatch * 2 + 6
    lx, ly = x1 - width, y0 + 2
    if lx < x0 + (x1 - x0) // 3:
        return
    for s, (name, fill) in enumerate(zip(names, fills, strict=True)):
        yy = ly + int(s * size * 1.3)
        if kind == "bar":
            _bar(draw, (lx, yy + 2, lx + swatch, yy + 2 + swatch), fill, 1)
        else:
            draw.line(
                [(lx - 2, yy + swatch // 2 + 2), (lx + swatch + 2, yy + swatch // 2 + 2)], fill=fill["edge"], width=2
            )
            _marker(draw, lx + swatch // 2, yy + swatch // 2 + 2, max(3, size // 4), s, fill["edge"])
        labels.append((name, yy, lx + swatch + 6, 0))


def _bar(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], fill: dict, line_w: int) -> None:
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    draw.rectangle(box, fill=fill["fill"], outline=fill["edge"], width=line_w)
    if fill["hatch"]:
        gap = 6
        for off in range(-(y1 - y0), x1 - x0, gap):
            a = (x0 + max(off, 0), y1 - max(-off, 0))
            span = min(x1 - a[0], a[1] - y0)
            draw.line([a, (a[0] + span, a[1] - span)], fill=(0, 0, 0), width=1)


def _marker(draw: ImageDraw.ImageDraw, x: int, y: int, r: int, kind: int, colour) -> None:
    if kind % 3 == 0:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif kind % 3 == 1:
        draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)


def _significance(rng, draw, labels, x0, slot, ypix, tops, style, size, line_w) -> None:
    """Brackets with ``*``/``ns`` over pairs of groups (identical marks: repeated labels)."""
    n_groups = tops.shape[1]
    mark = "*" if rng.random() < 0.6 else "ns"
    for g in range(n_groups - 1):
        if rng.random() < 0.5:
            continue
        level = ypix(float(tops[:, g : g + 2].max()) * 1.05)
        a, b = int(x0 + slot * (g + 0.5)), int(x0 + slot * (g + 1.5))
        ly = int(level) - size // 3
        if ly - size < 0:
            continue
        draw.line([(a, ly + size // 4), (a, ly), (b, ly), (b, ly + size // 4)], fill=(0, 0, 0), width=line_w)
        th, tw = text.text_size(mark, style.face, size)
        labels.append((mark, ly - th - 2, (a + b) // 2 - tw // 2, 0))


def _repeated_tick_labels(labels, canvas: np.ndarray, style: TextStyle, size: int) -> list[Negative]:
    """Two identical labels drawn on plain paper: a pixel-identical repeat."""
    seen: dict[str, tuple[int, int, int, int]] = {}
    for label_text, ly, lx, angle in labels:
        if angle:
            continue
        h, w = text.text_size(label_text, style.face, size)
        box = (ly, lx, ly + h, lx + w)
        if min(box) < 0 or box[2] > canvas.shape[0] or box[3] > canvas.shape[1]:
            continue
        if label_text in seen:
            first = seen[label_text]
            if not _overlaps(first, box):
                return [Negative("repeated_labels", (first, box))]
        seen[label_text] = box
    return []


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
