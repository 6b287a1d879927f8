"""Typed view of the ``matcher:`` section of ``params.yaml`` (the only home of its values).

``MatcherParams.from_dict(param("matcher"))`` checks that every key is present and known and names
the dotted key of any problem, so a typo in params.yaml fails loudly instead of silently using nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, get_type_hints


@dataclass(frozen=True)
class ImageParams:
    max_pixels: int  # working-resolution cap; larger figures are area-downscaled, masks return at full size
    min_side: int  # shorter side below this: too small to hold a copy-move, returned authentic


@dataclass(frozen=True)
class PanelParams:
    background_tolerance: int  # per-channel distance to the page colour still counted as page (0-255)
    border_share: float  # share of border pixels that must have one colour for the figure to have a page colour
    exact_border_share: float  # ... and share exactly of it (digital paper is flat; grainy image backgrounds are not)
    min_page_brightness: int  # darker border colours are image backgrounds (fluorescence), not the page
    min_gutter_px: int  # blank rows/columns needed to cut between panels (working px)
    max_gutter_ink: float  # share of non-page pixels a blank row/column may hold (dust, JPEG ringing)
    min_panel_area: float  # leaves smaller than this share of the figure are labels/decorations, not panels
    min_panel_side: int  # ... as are leaves with a side shorter than this (working px)
    graphic_page_share: float  # rendered chart: at least this share of page colour ...
    graphic_flat_share: float  # ... and at least this share of the rest perfectly flat (rendered fills)
    paper_tolerance: int  # loose page-colour tolerance for text/line-art detection (absorbs JPEG ringing)
    paper_share: float  # text/line art: at least this share near the page colour (half of it exactly) ...
    stroke_radius: float  # ... and ink thinner than this radius (share of the figure diagonal) ...
    stroke_share: float  # ... for all but this share of the ink


@dataclass(frozen=True)
class MaskingParams:
    pure_tolerance: int  # a channel within this of 0 or 255 counts as a pure (annotation) colour
    overlay_max_area: float  # flat pure-colour blobs below this share of their panel are text/arrows/scale bars
    overlay_margin_px: int  # margin kept around such overlays (working px)
    text_detector: str  # OCR text detector whose boxes are masked too: "rapidocr" or "none" (overlays only)
    text_max_side: int  # the detector sees the working image downscaled to this longer side (px)
    text_box_score: float  # mean text probability a detected box needs
    text_margin: float  # margin grown around each text box, as a share of its text height
    text_max_box_area: float  # boxes larger than this share of their panel are texture, not text
    text_min_contrast: float  # a text box spans at least this many grey levels (2nd to 98th percentile) ...
    text_min_sharpness: float  # ... and its steepest one-pixel steps cover this share of that contrast ...
    text_min_paper: float  # ... and this share of it is page colour (text on paper) ...
    text_min_overlay: float  # ... or this share pure-colour overlay (text drawn over an image)


@dataclass(frozen=True)
class KeypointParams:
    max_keypoints: int  # strongest SIFT keypoints kept per figure (bounds matching time) ...
    keypoints_per_megapixel: int  # ... and per megapixel of matchable panels
    contrast_threshold: float  # SIFT contrastThreshold (low: faint blots still get keypoints)
    max_copies: int  # most copies of one region a keypoint may match (more = a repeated pattern, dropped)
    ratio: float  # generalised 2NN: matches end at the first distance gap d_m < ratio * d_(m+1)
    max_distance: float  # RootSIFT distance above which nothing is a match
    min_offset: float  # matches closer than this share of the image diagonal are self-similarity, not copies


@dataclass(frozen=True)
class RansacParams:
    reproj_threshold_px: float  # RANSAC inlier distance (working px)
    min_inliers: int  # distinct inlier pairs a transform needs before it is verified
    max_models: int  # transforms looked for per panel pair and orientation
    max_scale: float  # copies scaled by more than this (or less than its inverse) are not considered
    max_iters: int
    confidence: float


@dataclass(frozen=True)
class DenseParams:
    enabled: bool
    max_side: int  # the dense branch works on the figure downscaled to this longer side ...
    scale: float  # ... and to at most this share of the working size
    patch: int  # odd patch side (dense px)
    max_patches: int  # stride grows until at most this many patches are indexed
    min_std: float  # patches flatter than this (grey levels) match anything and are skipped
    radius: float  # feature-space match radius (features are contrast-normalised, norm <= 1)
    hash_step: float  # hash cell width, in standard deviations of each coefficient over the figure
    max_copies: int  # most copies one patch may match (generalised 2NN, as for keypoints)
    ratio: float  # generalised 2NN ratio
    offset_bin_px: int  # offset-histogram bin (dense px)
    min_matches: int  # matched patches agreeing on one offset before the peak is verified
    max_candidates: int  # strongest offset peaks sent to verification
    transforms: list[str]  # dihedral transforms searched (identity, flip_h, flip_v, rot180, rot90, ...)


@dataclass(frozen=True)
class PanelPairParams:
    enabled: bool
    thumb_side: int  # thumbnail px of the longest panel's longer side (all panels share that scale)
    min_panel_side: int  # panels with a shorter side (working px) are not compared
    max_panels: int  # the largest this many matchable panels are compared pairwise
    zooms: list[float]  # zoom factors (copy / source) searched besides 1; a zoomed copy shows part of its source
    min_overlap: float  # overlap of two panels, share of the smaller one, for a shift to count
    min_zncc: float  # thumbnail correlation a pair needs to become a candidate
    max_candidates: int  # candidates handed to verification per figure (best first)
    per_pair: int  # ... and per pair of panels
    screen: bool  # a half-size pass first screens out combinations far below min_zncc (panelpairs._Screen)
    screen_margin: float  # ... by more than this


@dataclass(frozen=True)
class SmallCopyParams:
    enabled: bool
    min_std: float  # neighbourhoods flatter than this (grey levels) are not hashed
    min_area: float  # an exact repeat must pile up at least this share of the image on one offset ...
    min_pixels: int  # ... and at least this many pixels
    max_copies: int  # a neighbourhood repeated more often than this is texture, not a copy
    max_candidates: int
    jpeg_sigma: float  # JPEG'd figure: neighbourhoods hashed again on the figure low-passed by this Gaussian (px) ...
    jpeg_step: float  # ... each value quantised in steps of this x the spread two low-passed JPEG errors of the
    #                   figure's own compression leave between a copy and its source (0: off)


@dataclass(frozen=True)
class VerifyParams:
    smooth_sigma: float  # Gaussian blur before comparing (suppresses noise/JPEG differences)
    window: int  # odd ZNCC window (working px)
    min_zncc: float  # local zero-normalised correlation that counts as agreement
    min_std: float  # local std (grey levels) below which a window is flat
    residual_noise: float  # low-texture pixels agree when their window residual is below this x the image noise
    residual_floor: float  # ... or below this many grey levels (noise-free images)
    pixel_tolerance: float  # residual (grey levels, after gain/offset fit) for pixel-level boundary refinement
    min_area: float  # textured agreeing area needed, as a share of the image
    min_area_px: int  # ... and at least this many working pixels
    min_exact_area: float  # an exact small copy (origin "exact", judged pixel for pixel) needs this share instead
    peak_shift_px: int  # shift used to test that the transform is a sharp optimum
    max_peak_ratio: float  # residual at the transform / best residual one shift away must stay below this
    max_noise_ratio: float  # median residual inside a copy must stay below this x the image noise std
    compression_ratio: float  # ... or below this x the mean error of the figure's own JPEG compression (when seen)
    max_overlap: float  # source and copy may share at most this share of the smaller one
    min_samples: float  # independent samples of detail (area / correlation cell) an agreement must rest on
    jpeg_lowpass_sigma: float  # JPEG'd figure: Gaussian (px) through which copy, source and JPEG error are compared
    jpeg_lowpass_ratio: float  # ... a copy with less detail than min_samples agrees, low-passed, within this x
    #                            what the figure's own JPEG errors leave low-passed (0: such copies are rejected)
    jpeg_min_samples: float  # ... and holds at least this many samples of detail (fewer: any two smooth places agree)
    jpeg_search_min_samples: float  # a copy found by the JPEG search (small_copies.jpeg_step) must hold this many
    #                                 samples of detail (its best look-alike passes jpeg_min_samples by chance)
    jpeg_chance_probes: int  # JPEG-search copy: regions of its shape and detail elsewhere whose best chance look-alikes
    #                          it must beat (0: off)
    jpeg_max_rivals: int  # a JPEG-search copy and its source may each agree about as well with this many other places
    #                       (further copies of one source; a look-alike that won the search has more)
    colour_tail_ratio: float  # JPEG'd colour figure: each channel's p99 residual (copy interior) within this x the p99
    #                           of the figure's own JPEG errors at the same two places (0: off)
    colour_region_tail_ratio: float  # ... and on the interior of the whole claimed copy region (0: off)
    resample_gain: float  # a resampled copy above the same-pixels allowance must leave at most this x the residual
    #                       of the nearest flip/turn + shift alignment of the same two regions
    max_candidates: int  # candidates verified per image (strongest first)


@dataclass(frozen=True)
class OperationParams:
    merge_overlap: float  # regions overlapping by this share of the smaller one belong to one operation
    max_operations: int  # most operations reported per image (extra instances cost oF1)


@dataclass(frozen=True)
class MatcherParams:
    jobs: int  # worker processes for folders (results do not depend on it)
    image: ImageParams
    panels: PanelParams
    masking: MaskingParams
    keypoints: KeypointParams
    ransac: RansacParams
    dense: DenseParams
    panel_pairs: PanelPairParams
    small_copies: SmallCopyParams
    verify: VerifyParams
    operations: OperationParams

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MatcherParams:
        """Build from the ``matcher`` section; raises ``ValueError`` naming missing or unknown keys."""
        return _build(cls, values, "matcher")

    @classmethod
    def coerce(cls, values: MatcherParams | dict[str, Any]) -> MatcherParams:
        return values if isinstance(values, MatcherParams) else cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"params: {where} must be a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in values]
    unknown = [k for k in values if k not in names]
    if missing or unknown:
        parts = [f"missing {', '.join(f'{where}.{n}' for n in missing)}"] if missing else []
        parts += [f"unknown {', '.join(f'{where}.{k}' for k in unknown)}"] if unknown else []
        raise ValueError(f"params: {'; '.join(parts)}")
    kwargs = {}
    for name in names:
        hint = hints[name]
        value = values[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        elif hint is bool:
            if not isinstance(value, bool):
                raise ValueError(f"params: {where}.{name} must be true/false, got {value!r}")
            kwargs[name] = value
        elif hint in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"params: {where}.{name} must be a number, got {value!r}")
            kwargs[name] = hint(value)
        else:
            kwargs[name] = list(value) if isinstance(value, list | tuple) else value
    return cls(**kwargs)
