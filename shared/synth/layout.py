"""Figure composition: single panels (like Kaggle train) and compound multi-panel figures (like test).

A compound figure is packed in rows: each row holds one to three blocks (or a column of two stacked
blocks) whose widths follow their natural aspect ratios, so panels fill the page the way journal
figures do. Every block starts with a panel letter; labels, scale bars and lane marks repeat by design
(genuinely repeated content, recorded as hard negatives).
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.synth.annotate import Context, figure_style, scale_bar
from shared.synth.blocks import DARK, Plan, blot_block, plan_block, render_block, render_image
from shared.synth.config import SynthConfig, pick
from shared.synth.families import MICROSCOPY
from shared.synth.families.blot import lane_layout, random_style, render_strip
from shared.synth.families.chart import render_chart
from shared.synth.figure import GRAY_FAMILIES, Figure

MAX_PANELS = 12


def compose(rng: np.random.Generator, config: SynthConfig, compound: bool) -> Figure:
    """An authentic figure, compound or single-panel, with sides in ``[min_side, max_side]``."""
    for _ in range(20):
        figure = compose_compound(rng, config) if compound else compose_single(rng, config)
        if figure is not None and any(p.forgeable and min(p.height, p.width) >= 16 for p in figure.panels):
            break
    else:
        raise RuntimeError("could not compose a figure with a forgeable panel")
    if all(p.family in GRAY_FAMILIES for p in figure.panels) and rng.random() < config.modes["gray_when_possible"]:
        gray = cv2.cvtColor(figure.image, cv2.COLOR_RGB2GRAY)
        figure.image = np.repeat(gray[:, :, None], 3, axis=2)
        figure.gray = True
    return figure


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo * 1.001)))))


def _clip_side(value: float, config: SynthConfig) -> int:
    return int(np.clip(round(value), config.min_side, config.max_side))


def compose_single(rng: np.random.Generator, config: SynthConfig) -> Figure | None:
    """One panel filling the image; a third of them keep their labels (cropped from a figure)."""
    family = pick(rng, config.families)
    long_side = _log_uniform(rng, max(config.min_side, 160), config.max_side * 0.85)
    aspect = {"blot": rng.uniform(0.15, 0.6), "chart": rng.uniform(0.6, 1.0)}.get(family, rng.uniform(0.6, 1.0))
    short = _clip_side(long_side * aspect, config)
    h, w = (short, _clip_side(long_side, config)) if family == "blot" or rng.random() < 0.5 else (
        _clip_side(long_side, config), short)  # fmt: skip
    figure = Figure(np.full((h, w, 3), 255, np.uint8), compound=False)
    text_style, letter_face, letter_size, letters = figure_style(rng, max(w, 500))
    ctx = Context(rng, figure, text_style, letter_face, letter_size, letters, gutter=4, borders=False)
    labelled = rng.random() < 0.35
    if family == "blot":
        if labelled and h >= 10 * text_style.size:
            plan = plan_block(ctx, config, "blot", budget=6)
            if blot_block(ctx, (0, 0, h, w), **plan.spec) == 0:
                return None
        else:
            _bare_strips(rng, figure, config, h, w)
    elif family == "chart":
        figure.place(render_chart(rng, h, w, text_style), 0, 0)
    elif family == "gel":
        figure.place(render_image(ctx, "gel", h, w), 0, 0)
    else:
        placed = figure.place(render_image(ctx, family, h, w), 0, 0)
        if labelled and family in MICROSCOPY:
            scale_bar(ctx, placed.box, dark_content=family in DARK)
    return figure


def _bare_strips(rng: np.random.Generator, figure: Figure, config: SynthConfig, h: int, w: int) -> None:
    style = random_style(rng, inverted=rng.random() < 0.08)
    n_strips = 1 if h < 2.5 * config.min_side or rng.random() < 0.5 else int(rng.integers(2, 5))
    centres, half = lane_layout(rng, w, int(rng.integers(2, 13)))
    gap = int(rng.integers(0, max(1, h // 25) + 1)) if n_strips > 1 else 0
    strip_h = (h - gap * (n_strips - 1)) // n_strips
    for s in range(n_strips):
        control = n_strips > 1 and s == n_strips - 1
        figure.place(render_strip(rng, strip_h, w, style, centres, half, uniform=control), s * (strip_h + gap), 0)


def compose_compound(rng: np.random.Generator, config: SynthConfig) -> Figure | None:
    """Rows of blocks on white paper, cropped to their content plus a margin."""
    width = _clip_side(rng.uniform(max(config.min_side, 0.45 * config.max_side), config.max_side), config)
    height_goal = min(config.max_side, int(width * rng.uniform(0.55, 1.25)))
    canvas = np.full((config.max_side, width, 3), 255, np.uint8)
    figure = Figure(canvas, compound=True)
    text_style, letter_face, letter_size, letters = figure_style(rng, width)
    gutter = int(np.clip(width * rng.uniform(0.004, 0.02), 2, 30))
    ctx = Context(rng, figure, text_style, letter_face, letter_size, letters, gutter, borders=rng.random() < 0.2)
    margin = int(rng.uniform(0.005, 0.025) * width) + 2
    col_gap = int(text_style.size * rng.uniform(0.8, 2.5))
    row_gap = int(text_style.size * rng.uniform(0.5, 1.5))
    budget, y = MAX_PANELS, margin
    usable = width - 2 * margin
    row_goal = height_goal / float(rng.choice([1, 2, 3, 4], p=[0.15, 0.4, 0.3, 0.15]))
    while budget > 0 and y < height_goal - 4 * text_style.size:
        items, budget = _plan_row(ctx, config, budget, usable / row_goal)
        aspects = [_stack_aspect(item) for item in items]
        gaps = col_gap * (len(items) - 1)
        readable = max(sum(p.min_height for p in item) for item in items)  # stacked blocks add up
        cap = max(row_goal * 1.3, readable)
        row_h = min((usable - gaps) / sum(aspects), config.max_side - margin - y, cap)
        if row_h < 5 * text_style.size:
            break
        widths = [int(a * row_h) for a in aspects]
        spare = usable - gaps - sum(widths)
        gap = col_gap + (min(spare // (len(items) - 1), 3 * col_gap) if len(items) > 1 else 0)
        x = margin
        for item, item_w in zip(items, widths, strict=True):
            _render_stack(ctx, config, item, (y, x, y + int(row_h), x + item_w), row_gap)
            x += item_w + gap
        y += int(row_h) + row_gap
    if len(figure.panels) < 2:
        return None
    return _crop(figure, margin, config)


def _plan_row(ctx: Context, config: SynthConfig, budget: int, aspect_goal: float) -> tuple[list[list[Plan]], int]:
    """Blocks for one row until their summed aspect nears ``aspect_goal`` (at most four)."""
    rng = ctx.rng
    items: list[list[Plan]] = []
    total = 0.0
    while budget > 0 and len(items) < 4 and total < 0.85 * aspect_goal:
        item = []
        for _ in range(2 if rng.random() < 0.15 else 1):
            plan = plan_block(ctx, config, pick(rng, config.blocks), budget)
            budget -= plan.n_panels
            item.append(plan)
            if budget <= 0:
                break
        items.append(item)
        total += _stack_aspect(item)
    return items or [[plan_block(ctx, config, "image", 1)]], budget


def _stack_aspect(item: list[Plan]) -> float:
    """Width/height of blocks stacked in one column with a common width."""
    return 1.0 / sum(1.0 / p.aspect for p in item)


def _render_stack(ctx: Context, config: SynthConfig, item: list[Plan], rect, row_gap: int) -> None:
    y0, x0, y1, x1 = rect
    heights = np.array([1.0 / p.aspect for p in item])
    heights = (y1 - y0 - row_gap * (len(item) - 1)) * heights / heights.sum()
    y = y0
    for plan, h in zip(item, heights, strict=True):
        render_block(ctx, config, plan, (y, x0, y + int(h), x1))
        y += int(h) + row_gap


def _crop(figure: Figure, margin: int, config: SynthConfig) -> Figure:
    """Trim empty paper around the content (keeping ``margin``), never below ``min_side``."""
    image = figure.image
    ink = np.minimum(np.minimum(image[:, :, 0], image[:, :, 1]), image[:, :, 2]) < 250
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    top = min([int(rows[0])] + [p.box[0] for p in figure.panels])
    left = min([int(cols[0])] + [p.box[1] for p in figure.panels])
    bottom = max([int(rows[-1]) + 1] + [p.box[2] for p in figure.panels])
    right = max([int(cols[-1]) + 1] + [p.box[3] for p in figure.panels])
    full_h, full_w = figure.image.shape[:2]
    y0, x0 = max(0, top - margin), max(0, left - margin)
    y1 = min(full_h, max(bottom + margin, y0 + config.min_side))
    x1 = min(full_w, max(right + margin, x0 + config.min_side))
    y0, x0 = max(0, min(y0, y1 - config.min_side)), max(0, min(x0, x1 - config.min_side))
    figure.crop(y0, x0, y1, x1)
    return figure
