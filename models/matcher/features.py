"""Image-level numbers for the meta-classifier: how strong and how plausible the matcher's evidence is."""

from __future__ import annotations

import numpy as np

from models.matcher.geometry import is_mirrored, rotation_deg, scale_of
from models.matcher.operations import Operation
from models.matcher.panels import KINDS, Layout
from models.matcher.verify import VerifiedPair

FEATURE_NAMES = [
    "n_operations",
    "n_accepted_pairs",
    "n_keypoints",
    "n_matches",
    "n_candidates_keypoints",
    "n_candidates_dense",
    "max_confidence",
    "max_inliers",
    "max_dense_support",
    "matched_area",
    "largest_operation_area",
    "best_peak_ratio",
    "best_residual",
    "best_zncc",
    "best_core_area",
    "any_flip",
    "any_rotation",
    "any_scale",
    "cross_panel",
    "n_panels",
    "n_matchable_panels",
    *[f"n_{kind}_panels" for kind in KINDS],
    "content_share",
    "has_page",
    "working_scale",
]


def image_features(
    *,
    layout: Layout | None,
    content_share: float,
    n_keypoints: int,
    n_matches: int,
    candidates_by_origin: dict[str, int],
    pairs: list[VerifiedPair],
    operations: list[Operation],
    area: int,
    scale: float,
) -> dict[str, float]:
    """Every name in :data:`FEATURE_NAMES`, as floats (0 where there is no evidence)."""
    accepted = [p for p in pairs if p.accepted]
    measured = [p for p in pairs if p.src_mask is not None]
    union = np.zeros(1, bool)
    for op in operations:
        union = op.mask if union.size == 1 else union | op.mask
    kinds = [p.kind for p in layout.panels] if layout is not None else []
    best = min(measured, key=lambda p: p.peak_ratio) if measured else None
    features = {
        "n_operations": len(operations),
        "n_accepted_pairs": len(accepted),
        "n_keypoints": n_keypoints,
        "n_matches": n_matches,
        "n_candidates_keypoints": candidates_by_origin.get("keypoints", 0),
        "n_candidates_dense": candidates_by_origin.get("dense", 0),
        "max_confidence": max((p.confidence for p in pairs), default=0.0),
        "max_inliers": max((p.candidate.support for p in accepted if p.candidate.origin == "keypoints"), default=0),
        "max_dense_support": max((p.candidate.support for p in accepted if p.candidate.origin == "dense"), default=0),
        "matched_area": float(union.sum()) / max(area, 1) if union.size > 1 else 0.0,
        "largest_operation_area": max((float(op.mask.sum()) / max(area, 1) for op in operations), default=0.0),
        "best_peak_ratio": best.peak_ratio if best else 1.0,
        "best_residual": best.residual if best else 1.0,
        "best_zncc": best.zncc if best else 0.0,
        "best_core_area": float(best.core_area) / max(area, 1) if best else 0.0,
        "any_flip": any(is_mirrored(p.candidate.affine) for p in accepted),
        "any_rotation": any(_turned(p.candidate.affine) for p in accepted),
        "any_scale": any(abs(scale_of(p.candidate.affine) - 1) > 0.03 for p in accepted),
        "cross_panel": any(p.candidate.src_panel != p.candidate.dst_panel for p in accepted),
        "n_panels": len(kinds),
        "n_matchable_panels": sum(k != "graphic" for k in kinds),
        **{f"n_{kind}_panels": kinds.count(kind) for kind in KINDS},
        "content_share": content_share,
        "has_page": layout is not None and layout.page_colour is not None,
        "working_scale": scale,
    }
    return {name: float(features[name]) for name in FEATURE_NAMES}


def _turned(affine: np.ndarray) -> bool:
    angle = abs(rotation_deg(affine))
    if is_mirrored(affine):
        angle = min(angle, 180 - angle)
    return angle > 2


def empty_features(scale: float = 1.0) -> dict[str, float]:
    """Features of an image the matcher did not analyse (too small)."""
    return image_features(
        layout=None,
        content_share=0.0,
        n_keypoints=0,
        n_matches=0,
        candidates_by_origin={},
        pairs=[],
        operations=[],
        area=1,
        scale=scale,
    )


def prefixed_features(features: dict[str, float]) -> dict[str, float]:
    """Feature names as the ensemble reads them (``matcher_`` prefix, the OOF ``features.csv`` columns)."""
    return {f"matcher_{name}": float(value) for name, value in features.items()}
