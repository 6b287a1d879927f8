"""``match_image``: panels -> masking -> keypoint and dense candidates -> verification -> operations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.matcher.config import MatcherParams
from models.matcher.dense import dense_candidates
from models.matcher.estimate import keypoint_candidates
from models.matcher.features import empty_features, image_features
from models.matcher.geometry import Candidate, describe, same_pair
from models.matcher.keypoints import detect, match
from models.matcher.masking import content_mask
from models.matcher.operations import assemble, probability_map, to_native
from models.matcher.panelpairs import panel_pair_candidates
from models.matcher.panels import find_panels
from models.matcher.prepare import as_rgb, prepare
from models.matcher.smallcopies import jpeg_copy_candidates, small_copy_candidates
from models.matcher.verify import VerifiedPair, VerifyContext, verify

ORIGINS = ("keypoints", "dense", "panels", "exact")  # the candidate branches


@dataclass(frozen=True)
class Link:
    """One verified source -> copy correspondence, in the figure's own pixel coordinates."""

    operation: int  # index into MatchResult.operations
    source: tuple[float, float]  # (x, y) centroid of the source region
    copy: tuple[float, float]  # (x, y) centroid of the copy
    transform: str  # "translation", "flip", "rotation 90°", "scale 1.20", ...
    confidence: float
    origin: str  # "keypoints" | "dense" | "panels" | "exact"


@dataclass(frozen=True)
class Verdict:
    """What verification said about one candidate transform (accepted or the reason it was not)."""

    origin: str  # "keypoints" | "dense" | "panels" | "exact"
    transform: str
    source_panel: int
    copy_panel: int
    accepted: bool
    reason: str
    confidence: float
    residual_grey: float  # median residual inside the copy (grey levels; 255 when never measured)
    peak_ratio: float  # residual at the transform / best residual 2 px away (1 when never measured)
    samples: float = 0.0  # independent samples of detail the agreement rests on (0 when never measured)


@dataclass
class MatchResult:
    """What the matcher says about one figure (all arrays at the figure's own size)."""

    operations: list[np.ndarray]  # bool (H, W), one per operation = source ∪ all its copies
    prob: np.ndarray  # float32 (H, W) in [0, 1]
    features: dict[str, float]
    links: list[Link] = field(default_factory=list)
    panels: list[tuple[tuple[int, int, int, int], str]] = field(default_factory=list)  # native (y0, x0, y1, x1), kind
    candidates: list[Verdict] = field(default_factory=list)  # every verified candidate (keypoints first)

    @property
    def forged(self) -> bool:
        return bool(self.operations)


def match_image(image: np.ndarray, params: MatcherParams | dict[str, Any]) -> MatchResult:
    """Find copy-move operations in one figure (uint8 grey, RGB or RGBA array)."""
    p = MatcherParams.coerce(params)
    rgb = as_rgb(image)
    native = rgb.shape[:2]
    if min(native) < p.image.min_side:
        return MatchResult([], np.zeros(native, np.float32), empty_features())
    work = prepare(rgb, p.image)
    layout = find_panels(work, p.panels)
    content, overlays = content_mask(work, layout, p.masking)
    min_offset = max(p.keypoints.min_offset * work.diagonal, 2.0 * p.verify.window)

    ctx = VerifyContext(work, layout, content, p.verify, min_offset, overlays, p.small_copies.max_copies)
    kps = detect(work.gray, content, p.keypoints, [panel.box for panel in layout.panels if panel.matchable])
    matches = match(kps, p.keypoints, min_offset)
    candidates = keypoint_candidates(kps, matches, layout.panel_at(kps.xy), p.ransac, min_offset)
    if p.dense.enabled:
        candidates += dense_candidates(work, layout, content, p.dense, min_offset, ctx.jpeg_error(content))
    candidates = _distinct(candidates, work.diagonal)[: p.verify.max_candidates]
    candidates += panel_pair_candidates(work, layout, content, p.panel_pairs)  # bounded by its own max_candidates
    candidates += small_copy_candidates(work, layout, content, p.small_copies, min_offset)
    # (the JPEG search also finds copies another branch proposed: its own seeds would only blur their masks)
    found = jpeg_copy_candidates(work, layout, content, p.small_copies, min_offset, ctx.signed_compression)
    candidates += [c for c in found if not _repeats(c, candidates, work.diagonal)]

    pairs = [verify(c, ctx) for c in candidates]
    operations = assemble(pairs, p.operations)

    features = image_features(
        layout=layout,
        content_share=float(content.mean()),
        n_keypoints=len(kps),
        n_matches=len(matches),
        candidates_by_origin={
            o: sum(c.origin == o for c in candidates) for o in ("keypoints", "dense", "panels", "exact")
        },
        pairs=pairs,
        operations=operations,
        area=work.area,
        scale=work.scale,
    )
    return MatchResult(
        operations=[to_native(op.mask, native) for op in operations],
        prob=probability_map(pairs, work.shape, native),
        features=features,
        links=_links(operations, work.shape, native),
        panels=[(_box_to_native(panel.box, work.shape, native), panel.kind) for panel in layout.panels],
        candidates=[_verdict(pair) for pair in pairs],
    )


def _verdict(pair: VerifiedPair) -> Verdict:
    c = pair.candidate
    return Verdict(
        origin=c.origin,
        transform=describe(c.affine),
        source_panel=int(c.src_panel),
        copy_panel=int(c.dst_panel),
        accepted=pair.accepted,
        reason=pair.reason,
        confidence=round(float(pair.confidence), 3),
        residual_grey=round(float(pair.residual_grey), 3),
        peak_ratio=round(float(pair.peak_ratio), 3),
        samples=round(float(pair.samples), 1),
    )


def _distinct(candidates: list[Candidate], diagonal: float) -> list[Candidate]:
    """Keypoint candidates first, each branch strongest first; drop repeats (or inverses) of earlier ones."""
    ordered = sorted(candidates, key=lambda c: (c.origin != "keypoints", -c.support))
    kept: list[Candidate] = []
    for cand in ordered:
        if not _repeats(cand, kept, diagonal):
            kept.append(cand)
    return kept


def _repeats(candidate: Candidate, others: list[Candidate], diagonal: float) -> bool:
    """Whether ``candidate`` is (or inverts) one of ``others`` between the same two panels."""
    tol = max(2.0, 0.005 * diagonal)
    return any(
        same_pair(candidate.affine, other.affine, tol, diagonal / 4)
        and {candidate.src_panel, candidate.dst_panel} == {other.src_panel, other.dst_panel}
        for other in others
    )


def _centroid(mask: np.ndarray, sy: float, sx: float) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean() + 0.5) * sx, float(ys.mean() + 0.5) * sy) if len(xs) else (math.nan, math.nan)


def _links(operations, shape: tuple[int, int], native: tuple[int, int]) -> list[Link]:
    sy, sx = native[0] / shape[0], native[1] / shape[1]
    links = []
    for k, op in enumerate(operations):
        for pair in op.pairs:
            pair: VerifiedPair
            links.append(
                Link(
                    operation=k,
                    source=_centroid(pair.src_mask, sy, sx),
                    copy=_centroid(pair.dst_mask, sy, sx),
                    transform=describe(pair.candidate.affine),
                    confidence=pair.confidence,
                    origin=pair.candidate.origin,
                )
            )
    return links


def _box_to_native(box, shape, native) -> tuple[int, int, int, int]:
    sy, sx = native[0] / shape[0], native[1] / shape[1]
    y0, x0, y1, x1 = box
    return round(y0 * sy), round(x0 * sx), round(y1 * sy), round(x1 * sx)
