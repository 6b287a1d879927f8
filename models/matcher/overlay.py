"""The picture an integrity reviewer looks at: every claimed duplication outlined and linked.

Each operation gets its own colour (``shared.overlay`` palette): its regions are tinted and outlined,
and an arrow runs from each source to its copy, labelled with the operation number and transform.
Panel boxes are drawn thin and grey (dashed look for charts/text, which the matcher ignores).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from models.matcher.pipeline import MatchResult
from shared.overlay import INSTANCE_COLOURS, blend, draw_outlines

PANEL_GREY = (150, 150, 150)


def draw_overlay(image_rgb: np.ndarray, result: MatchResult, show_panels: bool = True) -> np.ndarray:
    """RGB picture of ``result`` drawn over the figure (same size as the figure)."""
    from models.matcher.prepare import as_rgb

    out = as_rgb(image_rgb).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 600))
    if show_panels:
        for (y0, x0, y1, x1), kind in result.panels:
            if kind == "graphic":
                _dashed_rect(out, (x0, y0), (x1 - 1, y1 - 1), PANEL_GREY, thick, max(4, 4 * thick))
            else:
                cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), PANEL_GREY, thick)
    for k, mask in enumerate(result.operations):
        out = blend(out, mask, INSTANCE_COLOURS[k % len(INSTANCE_COLOURS)], alpha=0.35)
    out = draw_outlines(out, result.operations, thickness=thick + 1)
    font = max(0.4, max(h, w) / 1400)
    for link in result.links:
        colour = INSTANCE_COLOURS[link.operation % len(INSTANCE_COLOURS)]
        if any(math.isnan(v) for v in (*link.source, *link.copy)):
            continue
        src = (round(link.source[0]), round(link.source[1]))
        dst = (round(link.copy[0]), round(link.copy[1]))
        length = max(1.0, math.dist(src, dst))
        cv2.arrowedLine(out, src, dst, (0, 0, 0), thick + 2, cv2.LINE_AA, tipLength=min(0.3, 20 * thick / length))
        cv2.arrowedLine(out, src, dst, colour, thick, cv2.LINE_AA, tipLength=min(0.3, 20 * thick / length))
        cv2.circle(out, src, 3 * thick, colour, -1, cv2.LINE_AA)
        text = f"#{link.operation + 1} {link.transform} ({link.confidence:.2f})"
        mid = ((src[0] + dst[0]) // 2 + 4, (src[1] + dst[1]) // 2 - 4)
        cv2.putText(out, text, mid, cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 3 * thick, cv2.LINE_AA)
        cv2.putText(out, text, mid, cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick, cv2.LINE_AA)
    verdict = f"{len(result.operations)} operation(s)" if result.operations else "authentic"
    cv2.putText(out, verdict, (6, int(22 * font / 0.5)), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 3 * thick)
    cv2.putText(out, verdict, (6, int(22 * font / 0.5)), cv2.FONT_HERSHEY_SIMPLEX, font, (200, 0, 0), thick)
    return out


def _dashed_rect(image: np.ndarray, p0, p1, colour, thickness: int, dash: int) -> None:
    (x0, y0), (x1, y1) = p0, p1
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for s in range(0, length, 2 * dash):
            e = min(s + dash, length)
            pa = (a[0] + (b[0] - a[0]) * s // max(length, 1), a[1] + (b[1] - a[1]) * s // max(length, 1))
            pb = (a[0] + (b[0] - a[0]) * e // max(length, 1), a[1] + (b[1] - a[1]) * e // max(length, 1))
            cv2.line(image, pa, pb, colour, thickness)
