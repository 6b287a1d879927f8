"""Keypoint branch, part 2: matches grouped by panel pair and orientation, transforms by RANSAC.

Matches are grouped by the panels their two ends fall in (a copy lives in one panel and lands in one
panel, so repeated layout elements spread over a grid of panels never add up to one transform) and
by whether they are mirrored. In each group similarity transforms (rotation, uniform scale,
translation; mirrored groups get a reflection in front) are found one after another with OpenCV's
RANSAC, removing each model's inliers before looking for the next.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.matcher.config import RansacParams
from models.matcher.geometry import MIRROR_X, Candidate, apply, compose, scale_of
from models.matcher.keypoints import Keypoints, Matches


def keypoint_candidates(
    kps: Keypoints, matches: Matches, panel_of: np.ndarray, params: RansacParams, min_offset_px: float
) -> list[Candidate]:
    """Candidate pairs from keypoint matches (``panel_of``: panel index of every keypoint)."""
    if len(matches) < params.min_inliers:
        return []
    pa, pb = panel_of[matches.i], panel_of[matches.j]
    swap = pa > pb
    i = np.where(swap, matches.j, matches.i)
    j = np.where(swap, matches.i, matches.j)
    pa, pb = np.minimum(pa, pb), np.maximum(pa, pb)
    keys = np.stack([pa, pb, matches.mirrored.astype(np.int64)], axis=1)
    groups, inverse = np.unique(keys, axis=0, return_inverse=True)
    candidates = []
    for g, (panel_a, panel_b, mirrored) in enumerate(groups):
        members = np.flatnonzero(inverse.ravel() == g)
        if len(members) < params.min_inliers or panel_a < 0:
            continue
        src, dst, pair = kps.xy[i[members]], kps.xy[j[members]], np.arange(len(members))
        if panel_a == panel_b:  # inside one panel the direction source -> copy is unknown: offer both
            src, dst, pair = np.vstack([src, dst]), np.vstack([dst, src]), np.concatenate([pair, pair])
        candidates += _fit_group(src, dst, pair, bool(mirrored), int(panel_a), int(panel_b), params, min_offset_px)
    return candidates


def _fit_group(
    src: np.ndarray,
    dst: np.ndarray,
    pair: np.ndarray,
    mirrored: bool,
    panel_a: int,
    panel_b: int,
    params: RansacParams,
    min_offset_px: float,
) -> list[Candidate]:
    found = []
    src_fit = apply(MIRROR_X, src) if mirrored else src
    active = np.ones(len(src), bool)
    for _ in range(params.max_models):
        if len(np.unique(pair[active])) < params.min_inliers:
            break
        model, inliers = cv2.estimateAffinePartial2D(
            src_fit[active].astype(np.float32),
            dst[active].astype(np.float32),
            method=cv2.RANSAC,
            ransacReprojThreshold=params.reproj_threshold_px,
            maxIters=params.max_iters,
            confidence=params.confidence,
            refineIters=10,
        )
        if model is None:
            break
        rows = np.flatnonzero(active)[inliers.ravel().astype(bool)]
        used_pairs = np.unique(pair[rows])
        active &= ~np.isin(pair, used_pairs)  # both directions of an explained pair leave the pool
        if len(used_pairs) < params.min_inliers:
            break
        affine = compose(model, MIRROR_X) if mirrored else model
        if not _plausible(affine, src[rows], dst[rows], params, min_offset_px):
            continue
        # one row per pair (inside a panel both directions may be inliers of an involutive transform)
        _, first = np.unique(pair[rows], return_index=True)
        rows = rows[first]
        found.append(
            Candidate(
                affine=affine,
                src_pts=src[rows],
                dst_pts=dst[rows],
                origin="keypoints",
                support=len(rows),
                src_panel=panel_a,
                dst_panel=panel_b,
            )
        )
    return found


def _plausible(affine: np.ndarray, src: np.ndarray, dst: np.ndarray, params: RansacParams, min_offset: float) -> bool:
    """Scale within bounds, points really moved, inliers not piled on a handful of spots."""
    scale = scale_of(affine)
    if not (1 / params.max_scale <= scale <= params.max_scale):
        return False
    if np.median(np.linalg.norm(dst - src, axis=1)) < min_offset:
        return False
    distinct = len(np.unique(np.round(dst).astype(np.int64), axis=0))
    return distinct >= min(params.min_inliers, len(dst))
