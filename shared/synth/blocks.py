"""Blocks of a compound figure: a plan (what and its natural aspect), then rendering into a rectangle.

Kinds: ``blot`` (labelled strips sharing lanes), ``grid`` (microscopy rows x columns with headers,
row labels and scale bars, or fluorescence channels plus their merge), ``chart``, ``gel`` (with lane
numbers and ladder sizes) and ``image`` (one microscopy panel). Each block starts with its letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.synth import text
from shared.synth.annotate import (
    Context,
    LaneRow,
    draw_lane_rows,
    draw_scale_bar,
    frame,
    lane_rows,
    lane_rows_height,
    scale_bar,
    scale_bar_spec,
)
from shared.synth.config import SynthConfig, pick
from shared.synth.families import LOOKS, MICROSCOPY, RENDERERS
from shared.synth.families.blot import lane_layout, random_style, render_gel, render_strip
from shared.synth.families.brightfield import render_brightfield
from shared.synth.families.chart import render_chart
from shared.synth.families.microscopy import colourise, fluorescence_channels, fluorescence_look
from shared.synth.figure import Box, Negative, Panel
from shared.synth.textures import grain, to_uint8

Rect = tuple[int, int, int, int]  # y0, x0, y1, x1
CONTROLS = ("β-actin", "GAPDH", "α-Tubulin")
DARK = ("fluorescence", "em")


@dataclass
class Plan:
    """A block decided before layout: its kind, panel count and natural width/height ratio."""

    kind: str
    aspect: float
    n_panels: int
    spec: dict = field(default_factory=dict)
    min_height: float = 0.0  # below this the content becomes unreadable (tiny panels, squashed strips)


def plan_block(ctx: Context, config: SynthConfig, kind: str, budget: int) -> Plan:
    rng, size = ctx.rng, ctx.text.size
    micro = {k: v for k, v in config.families.items() if k in MICROSCOPY}
    if kind == "blot" and budget >= 1:
        n_lanes = int(rng.integers(2, 11))
        n_groups = 2 if rng.random() < 0.2 and n_lanes <= 6 and budget >= 2 else 1
        n_strips = int(np.clip(rng.integers(1, 8), 1, max(1, budget // n_groups)))
        rows = lane_rows(rng, n_lanes)
        pitch = size * rng.uniform(2.2, 5.0)
        strip_h = size * rng.uniform(1.3, 3.0)
        width = size * 7 + n_groups * n_lanes * pitch + (size * 4 if rng.random() < 0.45 else 0)
        height = lane_rows_height(rows, ctx.text.face, size) + n_strips * strip_h * 1.25
        spec = {"n_lanes": n_lanes, "n_groups": n_groups, "n_strips": n_strips, "rows": rows}
        return Plan("blot", width / height, n_strips * n_groups, spec, min_height=height * 0.8)
    if kind == "grid" and budget >= 2:
        family = pick(rng, micro)
        split = family == "fluorescence" and rng.random() < 0.5 and budget >= 3
        cols = int(rng.integers(2, 4)) + 1 if split else int(rng.integers(1, 5))
        cols = min(cols, budget)
        rows = max(1, min(int(rng.integers(1, 5)), budget // cols))
        if rows * cols < 2:
            cols, rows, split = 2, 1, False
        panel_aspect = rng.uniform(0.8, 1.35)  # width / height
        headers, row_labels = rng.random() < 0.6, rng.random() < 0.5 and rows > 1
        aspect = cols * panel_aspect / rows * (1 + 0.3 * row_labels / cols) / (1 + 0.2 * headers / rows)
        spec = {"family": family, "split": split, "rows": rows, "cols": cols, "headers": headers,
                "row_labels": row_labels}  # fmt: skip
        min_height = rows * 72 + (2 * size if headers else 0) + ctx.letter_size
        return Plan("grid", aspect, rows * cols, spec, min_height=min_height)
    if kind == "chart":
        return Plan("chart", rng.uniform(1.0, 1.6), 1, min_height=12 * size)
    if kind == "gel":
        return Plan("gel", rng.uniform(0.8, 1.4), 1, min_height=10 * size)
    return Plan("image", rng.uniform(0.75, 1.35), 1, {"family": pick(rng, micro)}, min_height=96)


def render_block(ctx: Context, config: SynthConfig, plan: Plan, rect: Rect) -> int:
    """Draw the letter, then the block's content inside ``rect``; returns the panels placed."""
    rng = ctx.rng
    y0, x0, y1, x1 = rect
    letter = ctx.letters[ctx.n_letters % len(ctx.letters)]
    lh, lw = text.text_size(letter, ctx.letter_face, ctx.letter_size)
    beside = plan.kind in ("chart", "image") and rng.random() < 0.4
    inner = (y0, x0 + lw + ctx.gutter, y1, x1) if beside else (y0 + lh + max(2, lh // 4), x0, y1, x1)
    if inner[2] - inner[0] < 40 or inner[3] - inner[1] < 40:
        return 0
    if plan.kind == "blot":
        placed = blot_block(ctx, inner, **plan.spec)
    elif plan.kind == "grid":
        placed = micro_grid(ctx, inner, **plan.spec)
    elif plan.kind == "chart":
        ctx.figure.place(render_chart(rng, inner[2] - inner[0], inner[3] - inner[1], ctx.text), inner[0], inner[1])
        placed = 1
    elif plan.kind == "gel":
        placed = gel_block(ctx, inner)
    else:
        placed = image_block(ctx, inner, plan.spec["family"])
    if not placed and plan.kind != "image":  # a block that does not fit its space becomes one image panel
        family = pick(rng, {k: v for k, v in config.families.items() if k in MICROSCOPY})
        placed = image_block(ctx, inner, family)
    if placed:  # letters only for blocks that exist, so A, B, C stay consecutive
        ctx.write(ctx.next_letter(), y0, x0, ctx.letter_face, ctx.letter_size)
    return placed


def render_image(ctx: Context, family: str, h: int, w: int, look: dict | None = None) -> Panel:
    """A microscopy panel (``look``: shared appearance); each scikit-image photograph is used once per figure."""
    if family == "brightfield":
        return render_brightfield(ctx.rng, h, w, ctx.sources, look=look)
    if family == "gel":
        return RENDERERS[family](ctx.rng, h, w)
    return RENDERERS[family](ctx.rng, h, w, look=look)


def image_block(ctx: Context, rect: Rect, family: str) -> int:
    y0, x0, y1, x1 = rect
    placed = ctx.figure.place(render_image(ctx, family, y1 - y0, x1 - x0), y0, x0)
    if ctx.borders:
        frame(ctx.figure.image, placed.box)
    scale_bar(ctx, placed.box, dark_content=family in DARK)
    return 1


def gel_block(ctx: Context, rect: Rect) -> int:
    """A gel with lane names (M, 1, 2, ...) over its lanes and ladder sizes beside the ladder bands."""
    rng, face = ctx.rng, ctx.text.face
    size = max(8, int(ctx.text.size * 0.9))
    y0, x0, y1, x1 = rect
    label_w = text.text_size("2000 bp", face, size)[1] + size // 2
    top = int(size * 1.5)
    h, w = y1 - y0 - top, x1 - x0 - label_w
    if h < 40 or w < 60:
        return 0
    panel = render_gel(rng, h, w)
    placed = ctx.figure.place(panel, y0 + top, x0 + label_w)
    ladder_lanes = panel.meta["ladder_lanes"]
    number = 0
    for i, cx in enumerate(panel.meta["centres"]):
        if i in ladder_lanes:
            name = "M"
        else:
            number += 1
            name = str(number)
        tw = text.text_size(name, face, size)[1]
        ctx.write(name, y0, placed.box[1] + round(cx) - tw // 2, face, size)
    ladder = panel.meta["ladder_y"]
    sizes = [2000, 1500, 1000, 750, 500, 250, 100, 50, 25, 10, 5, 2][: len(ladder)]
    last_bottom = -1
    for k in sorted(rng.choice(len(ladder), size=min(len(ladder), int(rng.integers(2, 5))), replace=False)):
        label = f"{sizes[k]} bp"
        th, tw = text.text_size(label, face, size)
        yy = placed.box[0] + int(ladder[k]) - th // 2
        if yy > max(placed.box[0], last_bottom + 2) and yy + th < placed.box[2]:
            ctx.write(label, yy, placed.box[1] - tw - size // 3, face, size)
            last_bottom = yy + th
    return 1


def blot_block(ctx: Context, rect: Rect, n_lanes: int, n_groups: int, n_strips: int, rows: list[LaneRow]) -> int:
    """Strips sharing lanes: lane labels on top, protein names left, sizes right, optional frames."""
    rng, canvas, size, face = ctx.rng, ctx.figure.image, ctx.text.size, ctx.text.face
    y0, x0, y1, x1 = rect
    names = [str(p) for p in rng.choice([p for p in text.PROTEINS if p not in CONTROLS], 8, replace=False)]
    control = int(rng.integers(0, n_strips)) if n_strips > 1 and rng.random() < 0.8 else -1
    if control >= 0:
        names[control] = str(rng.choice(CONTROLS))
    names = names[:n_strips]
    titles = [r.title for r in rows if r.title]
    name_w = max(text.text_size(n, face, size)[1] for n in names + titles) + size // 2
    sizes_w = text.text_size("120 kDa", face, size)[1] + size // 2 if rng.random() < 0.45 else 0
    group_gap = int(size * rng.uniform(0.6, 1.5)) if n_groups == 2 else 0
    strips_w = (x1 - x0 - name_w - sizes_w - group_gap) // n_groups
    rows = [_fit_names(row, strips_w / n_lanes, face, size) for row in rows]
    header_h = lane_rows_height(rows, face, size)
    gap = int(rng.uniform(0.15, 0.9) * size) if rng.random() < 0.8 else 0
    strip_h = int(min((y1 - y0 - header_h - gap * (n_strips - 1)) / n_strips, size * 4.5))
    if strips_w < 12 * n_lanes / 2 or strip_h < 10:
        return 0
    style = random_style(rng, inverted=rng.random() < 0.08)
    framed = rng.random() < 0.35
    lanes = [lane_layout(rng, strips_w, n_lanes) for _ in range(n_groups)]
    group_x = [x0 + name_w + g * (strips_w + group_gap) for g in range(n_groups)]
    for g in range(n_groups):
        draw_lane_rows(ctx, rows, group_x[g], y0, strips_w, lanes[g][0], title_x=x0 if g == 0 else None)
    right_align = rng.random() < 0.6
    unit = "kDa" if rng.random() < 0.7 else "KD"
    for s in range(n_strips):
        sy = y0 + header_h + s * (strip_h + gap)
        nh, nw = text.text_size(names[s], face, size)
        nx = x0 + name_w - nw - size // 3 if right_align else x0
        ctx.write(names[s], sy + (strip_h - nh) // 2, nx, face, size)
        for g in range(n_groups):
            centres, half = lanes[g]
            panel = render_strip(rng, strip_h, strips_w, style, centres, half, uniform=s == control)
            placed = ctx.figure.place(panel, sy, group_x[g])
            if framed:
                frame(canvas, placed.box, max(1, size // 12))
        if sizes_w:
            label = f"{int(rng.integers(10, 180))} {unit}" if unit == "kDa" else f"{int(rng.integers(10, 180))}{unit}"
            kh, _ = text.text_size(label, face, size)
            ctx.write(label, sy + (strip_h - kh) // 2, x1 - sizes_w + size // 3, face, size)
    return n_strips * n_groups


def _fit_names(row: LaneRow, pitch: float, face: str, size: int) -> LaneRow:
    """Lane names written level must fit their lane; otherwise they are slanted (as journals do)."""
    if row.kind != "names" or row.angle or max(text.text_size(n, face, size)[1] for n in row.labels) < 0.95 * pitch:
        return row
    return LaneRow(row.kind, row.labels, row.title, angle=45 if pitch >= size else 90)


def micro_grid(
    ctx: Context, rect: Rect, family: str, split: bool, rows: int, cols: int, headers: bool, row_labels: bool
) -> int:
    """Microscopy panels in a grid with optional column headers, row labels and identical scale bars."""
    rng, canvas, size, face = ctx.rng, ctx.figure.image, ctx.text.size, ctx.text.face
    y0, x0, y1, x1 = rect
    pool = text.TISSUES if family == "histology" else text.CONDITIONS
    row_names = [str(n) for n in rng.choice(pool, size=rows, replace=False)]
    if split:
        stains = [s for s in text.STAINS if s != "Merge"]
        col_names = [str(n) for n in rng.choice(stains, size=cols - 1, replace=False)] + ["Merge"]
    else:
        col_names = [str(n) for n in rng.choice(text.CONDITIONS, size=cols, replace=False)]
    bold = rng.random() < 0.35
    header_face = ctx.text.bold_face if bold else face
    two_lines = headers and not split and rng.random() < 0.3  # "Normal / Male" style two-word headers
    if two_lines:
        col_names = [
            f"{n}\n{m}"
            for n, m in zip(
                col_names, rng.choice(["Male", "Female", "24 h", "48 h", "Day 7", "Day 14"], cols), strict=True
            )
        ]
    header_h = int(size * (3.0 if two_lines else 1.6)) if headers else 0
    vertical_rows = row_labels and rng.random() < 0.35
    if row_labels and vertical_rows:
        label_w = size * 2
    elif row_labels:
        label_w = max(text.text_size(n, face, size)[1] for n in row_names) + size
    else:
        label_w = 0
    gap = max(1, int(ctx.gutter * rng.uniform(0.2, 0.8)))
    pw = (x1 - x0 - label_w - gap * (cols - 1)) // cols
    ph = (y1 - y0 - header_h - gap * (rows - 1)) // rows
    if pw < 24 or ph < 24:
        return 0
    bar = scale_bar_spec(rng, ph, pw, family in DARK, face, size)
    bar_policy = rng.choice(["all", "last", "first"], p=[0.35, 0.4, 0.25])
    row_family = [family] * rows
    if not split and rng.random() < 0.2:
        row_family = [str(rng.choice(list(MICROSCOPY))) for _ in range(rows)]
    # one experiment per grid (one tissue per row for histology): panels look alike without being copies
    grid_look = {f: LOOKS[f](rng) for f in sorted(set(row_family))}  # sorted: set order varies by process
    row_look = [LOOKS[f](rng) if f == "histology" else grid_look[f] for f in row_family]
    gx0 = x0 + label_w
    for c, name in enumerate(col_names if headers else []):
        colour = _stain_colour(name) if split else (0, 0, 0)
        for line_no, line in enumerate(name.split("\n")):
            th, tw = text.text_size(line, header_face, size)
            yy = y0 + int(line_no * size * 1.3)
            ctx.write(line, yy, gx0 + c * (pw + gap) + (pw - tw) // 2, header_face, size, colour)
    bars: list[Box] = []
    for r in range(rows):
        py = y0 + header_h + r * (ph + gap)
        if row_labels:
            angle = 90 if vertical_rows else 0
            th, tw = text.text_size(row_names[r], face, size, angle)
            ctx.write(row_names[r], py + (ph - th) // 2, x0 + max(0, (label_w - tw) // 2), face, size,
                      angle=angle)  # fmt: skip
        panels = _channel_panels(rng, ph, pw, cols - 1, grid_look.get("fluorescence")) if split else None
        for c in range(cols):
            px = gx0 + c * (pw + gap)
            panel = panels[c] if panels else render_image(ctx, row_family[r], ph, pw, row_look[r])
            placed = ctx.figure.place(panel, py, px)
            if ctx.borders:
                frame(canvas, placed.box)
            wanted = (
                bar_policy == "all"
                or (bar_policy == "last" and c == cols - 1)
                or (bar_policy == "first" and r == c == 0)
            )
            if bar is not None and wanted:
                bars.append(draw_scale_bar(canvas, placed.box, bar))
    if split:
        ctx.figure.negatives.append(Negative("merged_channels"))
    if len(bars) >= 2:
        ctx.figure.negatives.append(Negative("scale_bars", (bars[0], bars[1])))
    return rows * cols


def _stain_colour(name: str) -> tuple[int, int, int]:
    blue, green, red = (30, 60, 220), (30, 160, 40), (210, 30, 30)
    return {"DAPI": blue, "Hoechst": blue, "TUNEL": green, "GFP": green, "EdU": green, "PI": red}.get(name, (0, 0, 0))


def _channel_panels(rng: np.random.Generator, h: int, w: int, n_channels: int, look: dict | None) -> list[Panel]:
    """Each fluorescence channel alone, then their merge (genuinely the same content)."""
    if look is None or look["n_channels"] != n_channels:
        look = fluorescence_look(rng, n_channels)
    channels, _ = fluorescence_channels(rng, h, w, n_channels, look)
    style = look
    panels = []
    for i in range(n_channels):
        rgb = colourise([channels[i]], [style["colours"][i]], style["background"], style["gain"])
        rgb = rgb + grain(rng, h, w, float(rng.uniform(0.005, 0.02)), channels=3)
        panels.append(Panel(to_uint8(rgb * 255), "fluorescence"))
    merged = colourise(channels, style["colours"], style["background"], style["gain"])
    merged = merged + grain(rng, h, w, float(rng.uniform(0.005, 0.02)), channels=3)
    panels.append(Panel(to_uint8(merged * 255), "fluorescence"))
    return panels
