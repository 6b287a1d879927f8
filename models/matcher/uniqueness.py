"""Is an agreement specific to the claimed copy? Two ways similar content agrees without being copied.

A copy is one region placed once more, so its agreement with the source is unique within the figure:

* a periodic pattern (printed dots, hatching, lattices) agrees with itself at every period, so the
  region agreeing at the claimed shift also agrees, pixel for pixel, at two or more other shifts
  (a chain of two copies repeats once); only the region's own pixels are compared, because the
  objects lying on a patterned background (cells on a dotted dish) do not repeat with it;
* a symmetric structure (a circular vignette with its dark surround, a round dish, a symmetric blob)
  agrees with a symmetric look-alike under every flip and turn about its centre, whereas copied detail
  agrees only under the transform it was copied with: flipped or turned about its centre, a real
  source no longer matches its copy.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.matcher.dense import DIHEDRAL
from models.matcher.geometry import compose, invert
from models.matcher.refine import refine_translation
from models.matcher.residual import fit_residual

REPEAT_SIDE = 256  # the repetition test looks at most this far across a region
REPEAT_ZNCC = 0.9  # correlation of a candidate repeat before its residual is checked
MIN_COMPARED = 32  # fewest region pixels the repetition test compares
SYMMETRY_REACH = 0.1  # a flip/turn about the region's centroid is re-aligned by up to this x its side


def repeats_exactly(gray: np.ndarray, mask: np.ndarray, tolerance: float) -> bool:
    """Whether the region ``mask`` repeats itself exactly at two or more other shifts (see the module
    docstring): median residual within ``tolerance`` grey levels.

    A window of at most half ``REPEAT_SIDE`` (and half the region's extent), placed where the region is
    densest, is correlated (region pixels only) with its surroundings up to half a window away; the
    maximum of every correlation lobe above ``REPEAT_ZNCC`` outside the main one is checked.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return False
    th = min((ys.max() - ys.min() + 1) // 2, REPEAT_SIDE // 2)
    tw = min((xs.max() - xs.min() + 1) // 2, REPEAT_SIDE // 2)
    if th < 8 or tw < 8:
        return False
    h, w = gray.shape
    density = cv2.boxFilter(mask.astype(np.float32), cv2.CV_32F, (tw, th), normalize=False)
    cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
    ty0, tx0 = int(np.clip(cy - th // 2, 0, h - th)), int(np.clip(cx - tw // 2, 0, w - tw))
    template = np.ascontiguousarray(gray[ty0 : ty0 + th, tx0 : tx0 + tw], np.float32)
    inside = np.ascontiguousarray(mask[ty0 : ty0 + th, tx0 : tx0 + tw]).astype(np.uint8)
    if inside.sum() < MIN_COMPARED or float(template[inside > 0].std()) < 1.0:
        return False
    by0, bx0 = max(0, ty0 - th // 2), max(0, tx0 - tw // 2)
    box = np.ascontiguousarray(gray[by0 : min(h, ty0 + th + th // 2), bx0 : min(w, tx0 + tw + tw // 2)], np.float32)
    corr = cv2.matchTemplate(box, template, cv2.TM_CCOEFF_NORMED, mask=inside)
    corr = np.nan_to_num(corr, nan=-1.0, posinf=-1.0, neginf=-1.0)
    n, labels = cv2.connectedComponents((corr >= REPEAT_ZNCC).astype(np.uint8), connectivity=8)
    main = labels[ty0 - by0, tx0 - bx0]
    compared = inside > 0
    exact = 0
    for k in range(1, n):
        if k == main:
            continue
        y, x = np.unravel_index(np.argmax(np.where(labels == k, corr, -1.0)), corr.shape)
        other = box[y : y + th, x : x + tw]
        exact += fit_residual(template[compared], other[compared])[0] <= tolerance
        if exact >= 2:
            return True
    return False


def symmetric_lookalike(
    gray: np.ndarray, affine: np.ndarray, region: np.ndarray, detail: np.ndarray, origin: tuple[int, int], ratio: float
) -> bool:
    """Whether the copy agrees about as well with its source flipped or turned about the source's centre as
    under ``affine`` itself: its median residual (grey levels, over ``detail``) above ``ratio`` x the least of
    the seven alternatives' (each, and the claim, re-aligned by a shift). ``region`` (the claimed copy) and
    ``detail`` (its agreeing pixels that carry detail) are masks of a crop of ``gray`` starting at ``origin``
    (y, x); the centre of symmetry is sought near the centroid of either (cells on a round dish pull one off)."""
    if not region.any() or detail.sum() < MIN_COMPARED:
        return False
    y0, x0 = origin
    to_crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    size = (detail.shape[1], detail.shape[0])
    target = gray[y0 : y0 + size[1], x0 : x0 + size[0]][detail]

    def residual_under(transform: np.ndarray) -> float:
        warped = cv2.warpAffine(
            gray, compose(to_crop, transform), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return fit_residual(target, warped[detail])[0]

    reach = SYMMETRY_REACH * np.sqrt(region.sum())  # how far off a centroid the centre of symmetry may lie
    residual = residual_under(refine_translation(gray, affine, detail, origin, reach))  # aligned as the others
    for mask in (region, detail):  # the claimed region's centroid, and its detail's
        ys, xs = np.nonzero(mask)
        centre = invert(affine) @ np.array([xs.mean() + x0, ys.mean() + y0, 1.0])  # ... mapped onto the source
        for name, linear in DIHEDRAL.items():
            if name == "identity":
                continue
            turn = np.array(linear, np.float64)
            about_centre = np.hstack([turn, (centre - turn @ centre)[:, None]])
            other = refine_translation(gray, compose(affine, about_centre), detail, origin, reach)
            if residual > ratio * residual_under(other):
                return True
    return False
