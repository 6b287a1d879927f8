"""Where matching may look: inside matchable panels, off the page, away from text and scale bars.

Text found by an OCR text detector is removed as boxes (see :mod:`models.matcher.textboxes`); the
colour-overlay test below catches the rest (arrows, scale bars, single symbols) and stands alone when
the detector is off or not installed.

Text, panel letters, arrows and scale bars drawn on top of micrographs are small blobs of one pure
colour (white, black, yellow, ...). They repeat across panels and are the classic source
of false matches, so they are removed with a small margin. Charts and text panels are excluded as a
whole by their panel kind (see :mod:`models.matcher.panels`).
"""

from __future__ import annotations

import cv2
import numpy as np

from models.matcher.config import MaskingParams
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage
from models.matcher.textboxes import text_mask

MIN_OVERLAY_PIXELS = 3  # smaller pure-colour specks are noise, not annotations
FRAME_RUN = 25  # frames and rules: straight pure-colour runs at least this long (working px) ...
FRAME_WIDTH = 3  # ... and at most this thick


def overlay_mask(work: WorkingImage, layout: Layout, params: MaskingParams) -> np.ndarray:
    """Small flat blobs of pure colour inside panels (annotations drawn over the image), with a margin.

    Flatness keeps saturated image content out (thin pure highlights and gaps, band cores fading into
    the background); isolated pure specks are noise, large pure areas are backgrounds.
    """
    rgb = work.rgb
    tol = params.pure_tolerance
    pure = ((rgb <= tol) | (rgb >= 255 - tol)).all(axis=2)
    kernel = np.ones((3, 3), np.uint8)
    flat = np.ones(pure.shape, bool)
    for c in range(3):
        channel = rgb[:, :, c]
        flat &= (cv2.dilate(channel, kernel).astype(np.int16) - cv2.erode(channel, kernel)) <= tol
    candidate = (pure & flat & (layout.labels >= 0)).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    lines = frame_lines(pure & (layout.labels >= 0))
    if n <= 1:
        return _margin(lines, params)
    panel_area = np.array([p.area for p in layout.panels], np.float64)
    inside = candidate.astype(bool)
    panel_of = np.zeros(n, np.int64)  # components never cross a gutter, so any of their pixels names the panel
    np.maximum.at(panel_of, comp[inside], layout.labels[inside].astype(np.int64))
    panel_of = panel_of[1:]
    limit = params.overlay_max_area * panel_area[panel_of]
    area = stats[1:, cv2.CC_STAT_AREA]
    small = np.concatenate(([False], (area <= limit) & (area >= MIN_OVERLAY_PIXELS)))
    return _margin(small[comp] | lines, params)


def _margin(mask: np.ndarray, params: MaskingParams) -> np.ndarray:
    mask = mask.astype(np.uint8)
    if params.overlay_margin_px > 0:
        size = 2 * params.overlay_margin_px + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return mask.astype(bool)


def frame_lines(pure: np.ndarray) -> np.ndarray:
    """Thin straight lines of pure colour (panel frames, rules, axes): runs of at least ``FRAME_RUN`` px
    along a row or column that are at most ``FRAME_WIDTH`` px thick. They repeat around every framed panel
    and would agree perfectly; saturated blot bands are thicker and stay."""
    p = pure.astype(np.uint8)
    lines = np.zeros(pure.shape, bool)
    for run, across in (((1, FRAME_RUN), (FRAME_WIDTH + 1, 1)), ((FRAME_RUN, 1), (1, FRAME_WIDTH + 1))):
        long = cv2.morphologyEx(p, cv2.MORPH_OPEN, np.ones(run, np.uint8)).astype(bool)
        thick = cv2.morphologyEx(p, cv2.MORPH_OPEN, np.ones(across, np.uint8)).astype(bool)
        lines |= long & ~thick
    return lines


def content_mask(work: WorkingImage, layout: Layout, params: MaskingParams) -> tuple[np.ndarray, np.ndarray]:
    """``(content, overlays)``: pixels matching may use, and the annotations removed from them (colour
    overlays and OCR text boxes; verification never counts agreement on them either)."""
    matchable = np.zeros(len(layout.panels) + 1, bool)
    matchable[:-1] = [p.matchable for p in layout.panels]
    inside = matchable[layout.labels]  # label -1 indexes the trailing False
    overlays = overlay_mask(work, layout, params)
    overlays |= text_mask(work, layout, overlays, params)
    return inside & ~layout.page & ~overlays, overlays
