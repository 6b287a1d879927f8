"""Sub-pixel translation refinement of a candidate transform (ECC alignment of a copy onto its source)."""

from __future__ import annotations

import cv2
import numpy as np

from models.matcher.geometry import compose

REFINE_MARGIN = 4  # px of context around the core used by the sub-pixel refinement
REFINE_MAX_MOVE = 3.0  # a refinement moving the region by more than this (px) is not trusted


def refine_translation(
    gray: np.ndarray, affine: np.ndarray, core: np.ndarray, origin: tuple[int, int], max_move: float = REFINE_MAX_MOVE
) -> np.ndarray:
    """Sub-pixel translation refinement of ``affine`` by ECC alignment of the copy core onto its source.

    Keypoint positions carry half-pixel biases under flips and turns and dense offsets are quantised to
    the dense grid; both are translation errors, so only the translation is refined (the source is first
    warped into the copy's frame with the current transform). Kept when the move is below ``max_move``
    pixels.
    """
    ys, xs = np.nonzero(core)
    m = REFINE_MARGIN
    h, w = gray.shape
    ty0, ty1 = max(0, origin[0] + ys.min() - m), min(h, origin[0] + ys.max() + 1 + m)
    tx0, tx1 = max(0, origin[1] + xs.min() - m), min(w, origin[1] + xs.max() + 1 + m)
    template = np.ascontiguousarray(gray[ty0:ty1, tx0:tx1])
    if min(template.shape) < 8:
        return affine
    mask = np.zeros(template.shape, np.uint8)
    mask[ys + origin[0] - ty0, xs + origin[1] - tx0] = 255
    size = (template.shape[1], template.shape[0])
    to_template = compose(np.array([[1.0, 0.0, -tx0], [0.0, 1.0, -ty0]]), affine)
    source = cv2.warpAffine(gray, to_template, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    start = np.eye(2, 3, dtype=np.float32)
    try:
        _, found = cv2.findTransformECCWithMask(
            template,
            source,
            mask,
            np.full(source.shape, 255, np.uint8),
            start,
            cv2.MOTION_TRANSLATION,
            (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4),
            1,
        )
    except cv2.error:
        return affine
    # template(q) ~ source(q + t) = I(A^-1(q + t + origin)): the refined transform moves points by -t
    shift = found[:, 2].astype(np.float64)
    if not np.isfinite(shift).all() or np.abs(shift).max() > max_move:
        return affine
    refined = affine.copy()
    refined[:, 2] -= shift
    return refined
