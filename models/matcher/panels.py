"""Panels of a compound figure: page colour, recursive gutter cuts (XY-cut) and a coarse panel kind.

A figure's page (usually white) shows as one colour along its border; panels are the rectangles left
after recursively cutting along blank rows and columns of that colour. Each panel gets a kind from
simple statistics: ``graphic`` (charts, text, diagrams: mostly page colour or perfectly flat, never
matched), ``blot`` (grey and light), ``fluorescence`` (dark), ``microscopy`` (everything else: tissue,
cells, photos). A figure without a page colour (a full-bleed micrograph) is one panel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.matcher.config import PanelParams
from models.matcher.prepare import WorkingImage

KINDS = ("microscopy", "blot", "fluorescence", "graphic")
EXACT_PAGE = 1  # grey levels within which a border pixel is exactly the page colour (JPEG rounding)
FLAT_RANGE = 2  # grey levels a 3 x 3 neighbourhood may span and still be a rendered flat fill
PALETTE = 8  # grey levels a rendered chart's flat fills may take (the most frequent ones of the panel)
SEAM_RATIO = 3.0  # across a seam between touching images pixels differ this many times more than beside it ...
SEAM_GREY = 3.0  # ... and by at least this many grey levels ...
SEAM_SHARE = 0.6  # ... on this share of the seam's length
MAX_DEPTH = 16
MAX_LEAVES = 512


@dataclass(frozen=True)
class Panel:
    """One panel: ``box`` = ``(y0, x0, y1, x1)`` in working pixels (end exclusive) and its kind."""

    box: tuple[int, int, int, int]
    kind: str

    @property
    def area(self) -> int:
        y0, x0, y1, x1 = self.box
        return (y1 - y0) * (x1 - x0)

    @property
    def matchable(self) -> bool:
        return self.kind != "graphic"


@dataclass(frozen=True)
class Layout:
    """Panels of a figure, the page mask and a label map (panel index per pixel, -1 outside panels)."""

    panels: list[Panel]
    page: np.ndarray  # (h, w) bool: page-coloured pixels
    labels: np.ndarray  # (h, w) int16
    page_colour: tuple[int, int, int] | None

    def panel_at(self, xy: np.ndarray) -> np.ndarray:
        """Panel index (or -1) of each ``(x, y)`` point."""
        h, w = self.labels.shape
        x = np.clip(np.round(xy[:, 0]).astype(np.int64), 0, w - 1)
        y = np.clip(np.round(xy[:, 1]).astype(np.int64), 0, h - 1)
        return self.labels[y, x].astype(np.int64)


def page_colour(rgb: np.ndarray, params: PanelParams) -> tuple[int, int, int] | None:
    """The colour most border pixels share, if at least ``border_share`` of them do and it looks like
    paper (light, nearly grey and digitally flat: ``exact_border_share`` of the border exactly it); else None."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    quantised = border // 8
    keys = (quantised[:, 0].astype(np.int64) << 10) | (quantised[:, 1] << 5) | quantised[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    mode = values[np.argmax(counts)]
    candidates = border[keys == mode]
    colour = np.median(candidates, axis=0)
    distance = np.abs(border - colour).max(axis=1)
    neutral = colour.max() - colour.min() <= 3 * params.background_tolerance
    if (
        (distance <= params.background_tolerance).mean() < params.border_share
        or colour.mean() < params.min_page_brightness
        or not neutral
    ):
        return None  # no page: a full-bleed image (a dark or coloured border is image background, not paper)
    if (distance <= EXACT_PAGE).mean() < params.exact_border_share:
        return None  # a light but grainy border (EM, tissue, glass) is image background, not paper
    return tuple(round(c) for c in colour)


def page_mask(rgb: np.ndarray, colour: tuple[int, int, int] | None, tolerance: int) -> np.ndarray:
    """Pixels within ``tolerance`` of the page colour in every channel."""
    if colour is None:
        return np.zeros(rgb.shape[:2], bool)
    diff = np.abs(rgb.astype(np.int16) - np.asarray(colour, np.int16)).max(axis=2)
    return diff <= tolerance


def _segments(ink_share: np.ndarray, max_ink: float, min_gap: int) -> list[tuple[int, int]]:
    """Runs of inked lines separated by at least ``min_gap`` blank lines."""
    inked = ink_share > max_ink
    if not inked.any():
        return []
    padded = np.concatenate(([False], inked, [False])).view(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    merged = [[int(starts[0]), int(ends[0])]]
    for start, end in zip(starts[1:], ends[1:], strict=True):
        if start - merged[-1][1] < min_gap:
            merged[-1][1] = int(end)
        else:
            merged.append([int(start), int(end)])
    return [(a, b) for a, b in merged]


def _mostly_slivers(share: np.ndarray, segments: list[tuple[int, int]], min_side: int) -> bool:
    """Whether most ink of a cut would land in segments too thin to be panels."""
    thin = sum(float(share[a:b].sum()) for a, b in segments if b - a < min_side)
    return thin > 0.5 * float(share.sum())


def xy_cut(ink: np.ndarray, params: PanelParams) -> list[tuple[int, int, int, int]]:
    """Leaf boxes of the recursive cut along blank rows/columns of ``ink`` (True = not page)."""
    leaves: list[tuple[int, int, int, int]] = []
    stack = [((0, 0, ink.shape[0], ink.shape[1]), 0, 0)]
    while stack:
        (y0, x0, y1, x1), axis, depth = stack.pop()
        sub = ink[y0:y1, x0:x1]
        if not sub.any():
            continue
        cut = None
        for try_axis in (axis, 1 - axis):
            share = sub.mean(axis=1 - try_axis)  # axis 0: per row, axis 1: per column
            segments = _segments(share, params.max_gutter_ink, params.min_gutter_px)
            if len(segments) > 1 and _mostly_slivers(share, segments, params.min_panel_side):
                continue  # sparse content on the page colour (cells on a background, dot patterns): keep whole
            if len(segments) > 1 or (segments and (segments[0][0] > 0 or segments[0][1] < len(share))):
                cut = (try_axis, segments)
                break
        if cut is None or depth >= MAX_DEPTH or len(leaves) + len(stack) >= MAX_LEAVES:
            leaves.append((y0, x0, y1, x1))
            continue
        cut_axis, segments = cut
        if len(segments) == 1:  # only trimmed blank margins: keep cutting the other way
            a, b = segments[0]
            box = (y0 + a, x0, y0 + b, x1) if cut_axis == 0 else (y0, x0 + a, y1, x0 + b)
            stack.append((box, 1 - cut_axis, depth + 1))
            continue
        for a, b in reversed(segments):
            box = (y0 + a, x0, y0 + b, x1) if cut_axis == 0 else (y0, x0 + a, y1, x0 + b)
            stack.append((box, 1 - cut_axis, depth + 1))
    return sorted(leaves)


def is_drawn_on_paper(rgb: np.ndarray, page: np.ndarray, colour, diagonal: float, params: PanelParams) -> bool:
    """Text and line art: mostly paper-coloured (a loose tolerance absorbs JPEG ringing, a good part is
    exactly paper) and the rest thin strokes. Light micrographs fail the exact-paper test (their glass
    background is never the page colour) and saturated blots fail the stroke test (bands are blobs)."""
    if colour is None:
        return False
    distance = np.abs(rgb.astype(np.int16) - np.asarray(colour, np.int16)).max(axis=2)
    if (distance <= params.paper_tolerance).mean() < params.paper_share or page.mean() < params.paper_share / 2:
        return False
    ink = (distance > params.paper_tolerance).astype(np.uint8)
    if not ink.any():
        return True
    depth = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    thick = (depth >= max(1.5, params.stroke_radius * diagonal)).sum() / ink.sum()
    return bool(thick <= params.stroke_share)


def classify(work: WorkingImage, page: np.ndarray, box: tuple[int, int, int, int], params: PanelParams, colour) -> str:
    """Coarse panel kind: ``graphic`` for text/line art (thin strokes on paper) and rendered charts
    (mostly paper, the rest perfectly flat fills); otherwise blot, fluorescence or microscopy from
    saturation and brightness. A blot on white paper stays a blot: its bands are neither strokes nor flat."""
    y0, x0, y1, x1 = box
    rgb = work.rgb[y0:y1, x0:x1]
    gray = work.gray[y0:y1, x0:x1]
    on_page = page[y0:y1, x0:x1]
    if is_drawn_on_paper(rgb, on_page, colour, work.diagonal, params):
        return "graphic"
    if on_page.mean() >= params.graphic_page_share:
        g8 = gray.astype(np.uint8)
        kernel = np.ones((3, 3), np.uint8)
        flat = (cv2.dilate(g8, kernel).astype(np.int16) - cv2.erode(g8, kernel)) <= FLAT_RANGE
        # rendered fills are a few exact colours; a blurred scan is smooth too, but in a continuum of tones
        counts = np.bincount(g8[~on_page].ravel(), minlength=256)
        palette = np.zeros(256, bool)
        palette[np.argsort(counts)[-PALETTE:]] = True
        flat &= palette[g8]
        if flat[~on_page].mean() >= params.graphic_flat_share:
            return "graphic"
    saturation = (rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)).mean()
    brightness = float(gray.mean())
    if brightness < 70:
        return "fluorescence"
    if saturation < 12 and brightness > 110:
        return "blot"
    return "microscopy"


def _seam(gray: np.ndarray, min_side: int, ratio: float) -> int | None:
    """Column of the strongest straight seam between two touching images in ``gray`` (None if none).

    Across a seam neighbouring pixels belong to different pictures and differ like unrelated pixels; on
    either side they are neighbours in one picture. A seam is a column where the difference across is
    ``ratio`` x the differences beside it on most rows (a band edge or membrane never runs the full height
    that straight), at least ``min_side`` from either end.
    """
    h, w = gray.shape
    if w < 2 * min_side + 2 or h < 8:
        return None
    step = np.abs(np.diff(gray, axis=1))  # step[:, x] = |g[:, x+1] - g[:, x]|
    across = step[:, 1:-1]
    beside = np.maximum(np.minimum(step[:, :-2], step[:, 2:]), 0.5)
    strong = (across > ratio * beside) & (across >= SEAM_GREY)
    share = strong.mean(axis=0)  # share[k]: seam between columns k + 1 and k + 2
    share[: max(0, min_side - 2)] = 0
    share[max(0, w - min_side - 2) :] = 0
    k = int(np.argmax(share))
    return k + 2 if share[k] >= SEAM_SHARE else None


def split_seams(gray: np.ndarray, box: tuple[int, int, int, int], params: PanelParams, depth: int = 0) -> list:
    """``box`` cut recursively along straight seams between touching images (no gutter between them)."""
    y0, x0, y1, x1 = box
    if depth >= 8:
        return [box]
    sub = gray[y0:y1, x0:x1]
    x = _seam(sub, params.min_panel_side, SEAM_RATIO)
    if x is not None:
        return split_seams(gray, (y0, x0, y1, x0 + x), params, depth + 1) + split_seams(
            gray, (y0, x0 + x, y1, x1), params, depth + 1
        )
    y = _seam(np.ascontiguousarray(sub.T), params.min_panel_side, SEAM_RATIO)
    if y is not None:
        return split_seams(gray, (y0, x0, y0 + y, x1), params, depth + 1) + split_seams(
            gray, (y0 + y, x0, y1, x1), params, depth + 1
        )
    return [box]


def find_panels(work: WorkingImage, params: PanelParams) -> Layout:
    """Panels of the working image: gutter cuts, then seams between touching images (a figure without page
    colour is one image, cut only at seams)."""
    h, w = work.shape
    colour = page_colour(work.rgb, params)
    page = page_mask(work.rgb, colour, params.background_tolerance)
    boxes = xy_cut(~page, params) if colour is not None else [(0, 0, h, w)]
    boxes = [piece for box in boxes for piece in split_seams(work.gray, box, params)]
    min_area = params.min_panel_area * h * w
    panels = []
    labels = np.full((h, w), -1, np.int16)
    for box in boxes:
        y0, x0, y1, x1 = box
        if (y1 - y0) * (x1 - x0) < min_area or min(y1 - y0, x1 - x0) < params.min_panel_side:
            continue
        labels[y0:y1, x0:x1] = len(panels)
        panels.append(Panel(box=box, kind=classify(work, page, box, params, colour)))
    return Layout(panels=panels, page=page, labels=labels, page_colour=colour)
