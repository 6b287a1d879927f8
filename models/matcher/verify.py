"""Verification and masks: does the figure really agree with itself under a candidate transform?

For a candidate ``A`` (source -> copy) the figure is compared with its own warp ``I(A⁻¹ q)``:

1. local zero-normalised cross-correlation (ZNCC) over a small window marks textured pixels that
   agree; the agreeing components touching the candidate's support points are the copy's core;
2. the core grows to the pixels whose residual after a gain/offset fit is small (pixel-accurate
   boundaries, flat interiors of copied bands), holes are filled; the source side is the copy mask
   mapped back through ``A``;
3. the transform must be a sharp optimum: the residual at ``A`` is compared with the residual after
   shifting by a couple of pixels. A real copy (same pixels, same grain) loses its agreement at once,
   while merely similar structures (neighbouring blot bands, edges, smooth blobs) agree about as well
   one shift away;
5. copied pixels agree to within the image's own noise (two independent observations of similar
   content differ by a median 0.95 noise standard deviations; copies by much less); a copy
   that was rotated or rescaled was interpolated, so this test is left to the others there. At native
   scale an untouched copy agrees *exactly*; where such exact pieces exist, they alone are the core
   (in smooth, low-noise images the background around a copy agrees within the noise too);
6. source and copy must not overlap (except as links of a chain of copies), and the agreeing area must
   reach a share of the image;
7. the agreement must be unique (``uniqueness``): a region that repeats itself exactly at several shifts
   (hatching, lattices) is a pattern, and a copy that agrees about as well with its source flipped or
   turned about its centre (circular vignettes, round dishes) is a symmetric look-alike, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from models.matcher.config import VerifyParams
from models.matcher.dense import DIHEDRAL
from models.matcher.geometry import Candidate, apply, compose, rotation_deg, scale_of
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage
from models.matcher.refine import refine_translation
from models.matcher.residual import (
    fit_residual,
    jpeg_quality,
    native_residual,
    noise_sigma,
    signed_colour_compression_error,
    signed_compression_error,
)
from models.matcher.uniqueness import repeats_exactly, symmetric_lookalike

DIHEDRAL_LINEAR = tuple(DIHEDRAL.values())  # the eight flips/turns of the square (linear parts)
MIN_MEASURED = 32  # fewest interior pixels the residual tests use before falling back to the whole core
CHAIN_SHARE = 0.9  # a copy lying this much inside the source side is the next link of a chain
HULL_MAX_RATIO = 2.0  # the convex hull bridges flat gaps only when it is at most this x the core
FLAT_VAR = 0.25  # a 3 x 3 grey-level variance below this is perfectly flat (agrees with anything)
EXACT_GREY = 0.3  # window-mean residual (grey levels) of an untouched copy: quantisation only
COLOUR_SLACK = 1.25  # a colour channel may disagree this much more than the grey image (+ half a grey level)
NEAR_SCALE = 0.03  # a transform this close to unit scale ...
NEAR_DEG = 3.0  # ... and to a quarter turn is judged as the nearest flip/turn + shift (same pixels)


@dataclass
class VerifiedPair:
    candidate: Candidate
    accepted: bool
    reason: str  # "ok" or why it was rejected
    confidence: float  # >= 0.5 exactly when accepted
    src_mask: np.ndarray | None = None  # (h, w) bool, working resolution
    dst_mask: np.ndarray | None = None
    core_area: int = 0  # textured agreeing pixels
    zncc: float = 0.0  # mean ZNCC over the core
    residual: float = 1.0  # mean residual / std of the copy region
    residual_grey: float = 255.0  # median absolute residual inside the copy (grey levels)
    peak_ratio: float = 1.0
    overlap: float = 0.0
    samples: float = 0.0  # independent samples of detail the agreement rests on (see effective_samples)


class VerifyContext:
    """Per-image arrays shared by every verification."""

    def __init__(
        self,
        work: WorkingImage,
        layout: Layout,
        content: np.ndarray,
        params: VerifyParams,
        min_offset: float,
        overlays: np.ndarray | None = None,
        max_copies: int = 3,
    ):
        self.work = work
        self.max_copies = max_copies  # most copies of one source (small_copies.max_copies), see _sole_source
        self.layout = layout
        self.content = content
        self.params = params
        self.min_offset = min_offset
        self.overlays = overlays if overlays is not None else np.zeros(work.shape, bool)
        self.gray = work.gray
        self.smooth = cv2.GaussianBlur(work.gray, (0, 0), params.smooth_sigma) if params.smooth_sigma > 0 else work.gray
        self.min_area = max(params.min_area * work.area, params.min_area_px)
        self.min_exact_area = params.min_exact_area * work.area
        self.noise = noise_sigma(work.gray, content)
        # a figure saved through JPEG: copies differ from their source by its compression error on both sides
        # (only seen on the figure's own pixel grid, so not on downscaled working images)
        quality = jpeg_quality(work.gray, content) if work.scale == 1.0 else None
        self.quality = quality
        self.signed_compression = signed_compression_error(work.gray, quality) if quality is not None else None
        self.compression = np.abs(self.signed_compression) if quality is not None else None
        self._lowpass: tuple[np.ndarray, np.ndarray] | None = None
        self._colour_compression: np.ndarray | None = None
        # (not widened by JPEG: in a compressed figure, noise-only stretches would agree with any other)
        self.residual_tolerance = max(params.residual_floor, params.residual_noise * self.noise)

    def jpeg_error(self, region: np.ndarray) -> float:
        """Mean JPEG error of the figure's own compression over ``region`` (0 without JPEG)."""
        if self.compression is None or not region.any():
            return 0.0
        return float(self.compression[region].mean())

    def colour_jpeg(self, crop: tuple[slice, slice], region: np.ndarray) -> np.ndarray:
        """Mean JPEG error of the figure's own compression per colour channel over ``region`` of ``crop``
        (zeros without JPEG); chroma is stored coarser than luma, so a channel strays more than the grey."""
        if self.compression is None or not region.any():
            return np.zeros(3, np.float32)
        return np.abs(self.signed_colour_jpeg()[crop][region]).mean(axis=0)

    def signed_colour_jpeg(self) -> np.ndarray:
        """The signed per-channel error field of the figure's own colour JPEG (JPEG figures only)."""
        if self._colour_compression is None:
            self._colour_compression = signed_colour_compression_error(self.work.rgb, self.quality)
        return self._colour_compression

    def lowpass(self) -> tuple[np.ndarray, np.ndarray]:
        """(figure, its own JPEG error field) through the same Gaussian (``jpeg_lowpass_sigma``); JPEG figures only."""
        if self._lowpass is None:
            sigma = self.params.jpeg_lowpass_sigma
            self._lowpass = (
                cv2.GaussianBlur(self.gray, (0, 0), sigma),
                cv2.GaussianBlur(self.signed_compression, (0, 0), sigma),
            )
        return self._lowpass

    def same_pixels(self, region: np.ndarray) -> float:
        """Residual (grey levels) below which a copy in ``region`` holds "the same pixels": a share of the
        image noise, or what the figure's own JPEG compression explains there."""
        p = self.params
        return max(p.max_noise_ratio * max(self.noise, p.residual_floor), p.compression_ratio * self.jpeg_error(region))

    def exact_at_native(self, affine: np.ndarray, region: np.ndarray) -> bool:
        """Whether a copy (``region``: copy pixels, working coordinates) that the downscaled working image
        resolves only to interpolation error passes the noise test at the figure's own resolution."""
        if self.work.native_rgb is None:
            return False
        residual, noise = native_residual(self.work.native_rgb, self.work.scale, affine, region)
        return residual <= self.params.max_noise_ratio * max(noise, self.params.residual_floor)

    def region_of(self, panel: int) -> np.ndarray:
        if panel < 0:
            return self.content
        return self.layout.labels == panel


def _box(image: np.ndarray, window: int) -> np.ndarray:
    return cv2.boxFilter(image, cv2.CV_32F, (window, window), borderType=cv2.BORDER_REFLECT)


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[y, x] = image[y - dy, x - dx]`` with edge replication."""
    pad = max(abs(dx), abs(dy))
    padded = np.pad(image, pad, mode="edge")
    h, w = image.shape
    return padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def _zncc_maps(a: np.ndarray, b: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu_a, mu_b = _box(a, window), _box(b, window)
    var_a = np.maximum(_box(a * a, window) - mu_a * mu_a, 0)
    var_b = np.maximum(_box(b * b, window) - mu_b * mu_b, 0)
    cov = _box(a * b, window) - mu_a * mu_b
    zncc = cov / np.sqrt(var_a * var_b + 1e-6)
    return zncc, var_a, var_b


def verify(candidate: Candidate, ctx: VerifyContext) -> VerifiedPair:
    """Check one candidate and, if its copy region is real, return source and copy masks."""
    p = ctx.params
    h, w = ctx.work.shape
    dst_ok_full = ctx.region_of(candidate.dst_panel)
    ys, xs = np.nonzero(dst_ok_full)
    if len(ys) == 0:
        return VerifiedPair(candidate, False, "empty panel", 0.0)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = (slice(y0, y1), slice(x0, x1))
    size = (int(x1 - x0), int(y1 - y0))
    to_crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    warp = compose(to_crop, candidate.affine)  # crop pixel q' shows source pixel A^-1(q' + origin)
    src_ok = ctx.region_of(candidate.src_panel).astype(np.uint8)
    valid = cv2.warpAffine(src_ok, warp, size, flags=cv2.INTER_NEAREST, borderValue=0).astype(bool)
    valid &= dst_ok_full[crop]
    # a mirror or half turn maps the copy back onto the source; when both may lie in the copy's region (one
    # panel, or no panels), the agreeing region holds both halves, so both ends seed it. Between two panels
    # the region holds the copy alone (a half turn about a point between them is an involution as well)
    one_region = candidate.src_panel == candidate.dst_panel or min(candidate.src_panel, candidate.dst_panel) < 0
    involution = one_region and _involutive_points(candidate.affine, candidate.dst_pts)
    seeds = apply(to_crop, np.vstack([candidate.dst_pts, candidate.src_pts]) if involution else candidate.dst_pts)
    smooth_i = ctx.smooth[crop]
    smooth_w = cv2.warpAffine(ctx.smooth, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    zncc, var_i, var_w = _zncc_maps(smooth_i, smooth_w, p.window)
    textured = (var_i >= p.min_std**2) & (var_w >= p.min_std**2)
    raw_i = ctx.gray[crop]
    raw_w = cv2.warpAffine(ctx.gray, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    near_seeds = _seed_mask(seeds, raw_i.shape, p.window) & valid
    if not near_seeds.any():
        return VerifiedPair(candidate, False, "support outside the panels", 0.0)
    _, gain, offset = fit_residual(raw_i[near_seeds], raw_w[near_seeds])
    # textured pixels agree by correlation; low-texture pixels by a residual below the image's noise level
    # (grain is copied exactly, so a copy's residual sits well under it; perfectly flat pixels never count)
    residual = _box(np.abs(raw_i - (gain * raw_w + offset)), p.window)
    non_flat = _box(raw_i * raw_i, 3) - _box(raw_i, 3) ** 2 >= FLAT_VAR
    quiet = (residual <= ctx.residual_tolerance) & non_flat
    agree = ((textured & (zncc >= p.min_zncc)) | (~textured & quiet)) & valid & ~ctx.layout.page[crop]
    agree &= ~ctx.overlays[crop]  # identical scale bars and labels agree perfectly and prove nothing

    core = _touching(agree, seeds, p.window)
    core_area = int(core.sum())
    # (a copy found through JPEG is not pixel-exact: it needs the area of any other inexact agreement)
    exact = candidate.origin == "exact" and candidate.extra.get("search") != "jpeg"
    min_area = ctx.min_exact_area if exact else ctx.min_area
    if core_area < min_area:
        return VerifiedPair(candidate, False, "agreement too small", 0.0, core_area=core_area)

    refined = refine_translation(ctx.gray, candidate.affine, core, (int(y0), int(x0)))
    refined_w = cv2.warpAffine(
        ctx.gray, compose(to_crop, refined), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    before, gain, offset = fit_residual(raw_i[core], raw_w[core])
    after, refined_gain, refined_offset = fit_residual(raw_i[core], refined_w[core])
    if after < before:  # keep the refinement only when it explains the copy better
        candidate.affine, raw_w, gain, offset = refined, refined_w, refined_gain, refined_offset
    warp = compose(to_crop, candidate.affine)
    fit_error = np.abs(raw_i - (gain * raw_w + offset))
    if ctx.work.scale == 1.0 and not resampled(candidate.affine):  # only then can a copy be pixel-exact
        core = _exact_part(core, fit_error, non_flat, p.window, min_area)
    pixel_agree = fit_error <= p.pixel_tolerance
    # grow into agreeing pixels next to the core and, across flat stretches (which agree with anything),
    # inside the core's convex hull when the core fills most of it
    grow = cv2.dilate(core.astype(np.uint8), np.ones((p.window, p.window), np.uint8)).astype(bool)
    hull = _hull(core)
    if hull.sum() > HULL_MAX_RATIO * core_area:  # scattered agreement (separate objects): no bridging
        hull[:] = False
    region = core | ((grow | hull) & pixel_agree & valid)
    if candidate.origin == "panels":
        # a panel-level duplicate: everything of the overlap that agrees and hangs together with the core
        region = _connected_to(core | (pixel_agree & valid), core)
    region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    region = ndimage.binary_fill_holes(region) & valid

    dst_mask = np.zeros((h, w), bool)
    dst_mask[crop] = region
    if involution:
        # A maps the copy back onto the source (a flip about an axis, a half turn): the agreeing region
        # holds both sides; self-symmetric parts are symmetric objects, the rest pairs up
        halves = _split_partners(dst_mask, candidate.affine, ctx.min_offset, p.max_overlap)
        if halves is None:
            return VerifiedPair(candidate, False, "symmetric structure", 0.0, core_area=core_area)
        src_mask, dst_mask = halves
    else:
        src_mask = cv2.warpAffine(
            dst_mask.astype(np.uint8), candidate.affine, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        ).astype(bool)
    region = dst_mask[crop]
    if not region.any():
        return VerifiedPair(candidate, False, "only symmetric structures agree", 0.0, core_area=core_area)

    # judged inside the core (agreeing pixels, away from the boundary the correlation window blurs)
    inner = cv2.erode(core.astype(np.uint8), np.ones((p.window, p.window), np.uint8)).astype(bool)
    measured = (inner if inner.sum() >= MIN_MEASURED else core) & (region | dst_mask[crop] | src_mask[crop])
    measured = measured if measured.any() else core
    residual_grey, residual, peak_ratio = _sharpness(raw_i, raw_w, measured, p.peak_shift_px)
    smaller = max(1, min(int(src_mask.sum()), int(dst_mask.sum())))
    pair = VerifiedPair(
        candidate,
        False,
        "",
        0.0,
        src_mask=src_mask,
        dst_mask=dst_mask,
        core_area=core_area,
        zncc=float(zncc[core].mean()),
        residual=residual,
        residual_grey=residual_grey,
        peak_ratio=peak_ratio,
        overlap=_partial_overlap(src_mask, dst_mask) / smaller,
    )
    tolerance = ctx.same_pixels(_placed(measured, crop, (h, w)))  # "the same pixels", in grey levels
    pair.samples = effective_samples(raw_i, measured)
    if pair.overlap > p.max_overlap:
        pair.reason = "source and copy overlap"
    elif (
        pair.samples < p.min_samples
        and (residual_grey > EXACT_GREY or ctx.compression is not None)
        and not (
            residual_grey > EXACT_GREY
            and peak_ratio <= p.max_peak_ratio
            and _jpeg_copy(ctx, warp, crop, measured, pair.samples)
        )
    ):
        # an exact repeat proves itself (noise and grain agree too); an inexact one (resampled), or any in a
        # JPEG'd figure (whose compression erased the grain), rests on the content's detail alone, unless in a
        # JPEG'd figure it agrees with its source as closely as two JPEG errors alone allow (_jpeg_copy; an exact
        # repeat there carries one and the same error: smooth blocks that JPEG quantised alike, proving nothing)
        pair.reason = "too little detail to tell a copy from a look-alike"
    elif peak_ratio > p.max_peak_ratio:
        pair.reason = "not a sharp optimum (similar, not copied)"
    elif (
        not resampled(candidate.affine)
        and residual_grey > tolerance
        and not ctx.exact_at_native(candidate.affine, _placed(measured, crop, (h, w)))
    ):
        pair.reason = "residual above the image noise (similar, not copied)"
    elif (
        resampled(candidate.affine)
        and near_dihedral(candidate.affine)
        and not _snapped_exact(ctx, candidate.affine, measured, crop, tolerance)
    ):
        # within a few per cent of a flip/turn + shift: a forger's copy is then the same pixels; drifting
        # frames and alike panels only look like a slight rescale
        pair.reason = "residual above the image noise (similar, not copied)"
    elif (
        resampled(candidate.affine)
        and not near_dihedral(candidate.affine)
        and residual_grey > tolerance
        and residual_grey > p.resample_gain * _plain_residual(ctx, candidate.affine, measured, crop)
    ):
        # a rescaled or turned copy was interpolated, so its residual is not held to the image noise; but it must
        # then explain the copy far better than the nearest flip/turn + shift does (drifting, deforming frames
        # agree about as badly under a slight rescale as under a shift)
        pair.reason = "a resampled fit no better than a plain shift (alike frames, not a copy)"
    elif not _same_colours(ctx, warp, crop, measured, max(tolerance, residual_grey), dst_mask[crop]):
        pair.reason = "colours differ (a channel shown beside its merge, not a copy)"
    elif repeats_exactly(ctx.gray, dst_mask, tolerance) or repeats_exactly(ctx.gray, src_mask, tolerance):
        pair.reason = "periodic pattern"
    elif candidate.extra.get("search") == "jpeg" and pair.samples < p.jpeg_search_min_samples:
        # the JPEG search compares every offset under every flip/turn: its best look-alike on a few correlation
        # cells passes a single comparison's bar (jpeg_min_samples) by chance, so it needs more detail
        pair.reason = "too little detail to tell a copy from a look-alike"
    elif candidate.extra.get("search") == "jpeg" and not _beats_chance(ctx, candidate.affine, measured, crop):
        # like with like: regions of the same shape and detail elsewhere in this figure find look-alikes under the
        # same search; a copy agrees with its source far better than the best of them
        pair.reason = "agrees no better than this figure's chance look-alikes"
    elif candidate.extra.get("search") == "jpeg" and not _sole_source(ctx, candidate.affine, measured, crop):
        # found by searching every offset for low-passed look-alikes: the best of many comparisons passes the
        # tests above by chance on smooth content, which agrees about as well with many other places
        pair.reason = "agrees about as well with other places (a look-alike, not a copy)"
    elif residual_grey > EXACT_GREY and symmetric_lookalike(
        ctx.gray,
        candidate.affine,
        dst_mask[crop],
        measured & (var_i >= p.min_std**2),  # its detail: flat pixels agree under any transform
        (int(y0), int(x0)),
        p.max_peak_ratio,
    ):
        # (an exact agreement is the same pixels, whatever the content's symmetry)
        pair.reason = "agrees as well flipped or turned (a symmetric look-alike, not a copy)"
    else:
        pair.accepted, pair.reason = True, "ok"
    if pair.accepted:
        pair.confidence = 0.5 + 0.5 * (1.0 - peak_ratio / max(p.max_peak_ratio, 1e-6))
    else:
        pair.confidence = 0.25 * max(0.0, 1.0 - peak_ratio)
    return pair


def _jpeg_copy(
    ctx: VerifyContext, warp: np.ndarray, crop: tuple[slice, slice], measured: np.ndarray, samples: float
) -> bool:
    """Whether, in a JPEG'd figure, a copy (``measured``: its core in ``crop``; ``warp``: crop pixel -> source)
    (``samples``: of detail, see ``effective_samples``) agrees with its source as closely as the figure's own JPEG
    errors at the same two places allow.

    Compression erases grain, so a JPEG'd copy of smooth content holds too few samples of detail to be told
    from a look-alike by its residual, which is then the two JPEG errors. But JPEG error is fine-grained
    (8 x 8 blocks of quantised frequencies), while a look-alike differs from the original in its shapes: low-passed
    by the same filter, a copy keeps only the low-passed JPEG errors, a look-alike its differences. The error
    field of the figure's own compression (``signed_compression_error``) is compared through the same warp and
    filter, so the allowance is like with like: ``jpeg_lowpass_ratio`` x the residual of the two error samples.
    On fewer than ``jpeg_min_samples`` samples of detail any two smooth places agree, low-passed or not.
    """
    p = ctx.params
    if ctx.signed_compression is None or p.jpeg_lowpass_ratio <= 0 or samples < p.jpeg_min_samples:
        return False
    if measured.sum() < MIN_MEASURED:
        return False
    image, error = ctx.lowpass()
    size = (measured.shape[1], measured.shape[0])
    image_w = cv2.warpAffine(image, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error_w = cv2.warpAffine(error, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    residual, _, _ = fit_residual(image[crop][measured], image_w[measured])
    expected = float(np.median(np.abs(error[crop][measured] - error_w[measured])))
    return residual <= p.jpeg_lowpass_ratio * expected


def _sole_source(ctx: VerifyContext, affine: np.ndarray, measured: np.ndarray, crop: tuple[slice, slice]) -> bool:
    """Whether the copy (``measured``: its core in ``crop``) and its source, low-passed as in ``_jpeg_copy``, each
    agree with the other far better than with almost any other place of the figure, under any flip or turn: a
    sharp optimum against every offset and orientation the JPEG search tried, not only against shifts of
    ``peak_shift_px`` (``_sharpness``). A place whose residual is within 1 / ``max_peak_ratio`` of the partner's is
    a rival; a copy's only rivals are further copies of its source (``jpeg_max_rivals`` at either end), while a
    look-alike that won a search over millions of offsets (edges, halos, smooth blobs) has more. For the JPEG
    search's candidates (flips/turns + whole-pixel shifts)."""
    h, w = ctx.work.shape
    linear = np.round(affine[:, :2])
    snapped = np.hstack([linear, np.round(affine[:, 2:])])
    copy = _placed(measured, crop, (h, w))
    source = cv2.warpAffine(
        copy.astype(np.uint8), snapped, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ).astype(bool)
    limit = ctx.params.jpeg_max_rivals
    for region, to_partner in ((copy, np.linalg.inv(np.vstack([snapped, [0.0, 0.0, 1.0]]))[:2]), (source, snapped)):
        rivals = _rival_sites(ctx, region, to_partner)
        if rivals is None or rivals > limit:
            return False
    return True


def _turned_ssd(image: np.ndarray, template: np.ndarray, mask: np.ndarray):
    """``(turn, SSD map)`` of the masked ``template`` at every place of ``image``, under each of the eight
    flips/turns (``turn``: the 2x2 linear part the template was turned by, as a copy of it elsewhere would be)."""
    th, tw = template.shape
    corners = np.array([[0, 0], [tw - 1, 0], [0, th - 1], [tw - 1, th - 1]], np.float64)
    for orientation in DIHEDRAL_LINEAR:
        turn = np.array(orientation, np.float64)
        moved = corners @ turn.T
        lo = moved.min(axis=0)
        size = (round(moved[:, 0].max() - lo[0]) + 1, round(moved[:, 1].max() - lo[1]) + 1)
        to_turned = np.hstack([turn, -lo[:, None]])
        turned = cv2.warpAffine(template, to_turned, size, flags=cv2.INTER_NEAREST)
        turned_mask = cv2.warpAffine(mask, to_turned, size, flags=cv2.INTER_NEAREST)
        yield turn, cv2.matchTemplate(image, turned, cv2.TM_SQDIFF, mask=turned_mask)


def _best_elsewhere(image: np.ndarray, template: np.ndarray, mask: np.ndarray, own: tuple[int, int], exclude: float):
    """Least mean squared difference of the masked ``template`` (its corner at ``own``) at any place at least
    ``exclude`` px away, under the eight flips/turns."""
    best = np.inf
    for _, ssd in _turned_ssd(image, template, mask):
        yy, xx = np.ogrid[0 : ssd.shape[0], 0 : ssd.shape[1]]
        far = (xx - own[0]) ** 2 + (yy - own[1]) ** 2 >= exclude**2
        if far.any():
            best = min(best, float(ssd[far].min()))
    return best / max(float(mask.sum()), 1.0)


def _beats_chance(ctx: VerifyContext, affine: np.ndarray, measured: np.ndarray, crop: tuple[slice, slice]) -> bool:
    """Whether the copy's main piece (``measured``: its core in ``crop``), low-passed as in ``_jpeg_copy``, agrees
    with its source (mean squared difference) within ``max_peak_ratio``² of the best agreement that regions of the
    same shape and similar detail (variance within a factor of 2) elsewhere in this figure find anywhere at least
    ``min_offset`` away under any flip/turn: like with like, the figure's own chance look-alikes under the same
    search (``jpeg_chance_probes`` such regions at seeded random places; fewer than half of them found: no
    verdict here). A figure full of alike structures (halos, membranes) gives close look-alikes, a copy is closer."""
    probes = ctx.params.jpeg_chance_probes
    if probes <= 0:
        return True
    n, labels, stats, _ = cv2.connectedComponentsWithStats(measured.astype(np.uint8), connectivity=8)
    if n <= 1:
        return False
    piece = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(piece)
    if len(ys) < MIN_MEASURED:
        return False
    image = ctx.lowpass()[0] if ctx.signed_compression is not None else ctx.smooth
    h, w = image.shape
    y0, x0 = crop[0].start + int(ys.min()), crop[1].start + int(xs.min())
    mask = piece[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    th, tw = mask.shape
    if 2 * max(th, tw) >= min(h, w):
        return False
    inside = mask > 0
    template = image[y0 : y0 + th, x0 : x0 + tw]
    snapped = np.hstack([np.round(affine[:, :2]), np.round(affine[:, 2:])])
    inverse = np.linalg.inv(np.vstack([snapped, [0.0, 0.0, 1.0]]))[:2]
    copy_xy = np.stack([xs + crop[1].start, ys + crop[0].start], axis=1).astype(np.float64)
    src_xy = np.round(copy_xy @ inverse[:, :2].T + inverse[:, 2]).astype(int)
    ok = (src_xy[:, 0] >= 0) & (src_xy[:, 0] < w) & (src_xy[:, 1] >= 0) & (src_xy[:, 1] < h)
    if ok.sum() < MIN_MEASURED:
        return False
    diff = image[copy_xy[ok, 1].astype(int), copy_xy[ok, 0].astype(int)] - image[src_xy[ok, 1], src_xy[ok, 0]]
    agreement = float(np.mean(diff**2))
    detail = float(template[inside].var())
    source = np.zeros((h, w), bool)
    source[src_xy[ok, 1], src_xy[ok, 0]] = True
    rng = np.random.default_rng(0)
    chance = []
    for _ in range(8 * probes):
        if len(chance) == probes:
            break
        py, px = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        if not ctx.content[py : py + th, px : px + tw][inside].all():
            continue
        if (py - y0) ** 2 + (px - x0) ** 2 < ctx.min_offset**2 or source[py : py + th, px : px + tw].any():
            continue  # not the copy or its source
        probe = np.ascontiguousarray(image[py : py + th, px : px + tw])
        if not 0.5 * detail <= float(probe[inside].var()) <= 2.0 * detail:
            continue
        chance.append(_best_elsewhere(image, probe, mask, (px, py), ctx.min_offset))
    if len(chance) < probes / 2:
        return True  # too few comparable places to calibrate on: the other tests decide
    return agreement <= ctx.params.max_peak_ratio**2 * min(chance)


def _rival_sites(ctx: VerifyContext, region: np.ndarray, to_partner: np.ndarray) -> int | None:
    """Places other than its partner (``to_partner``: region -> partner, a flip/turn + whole-pixel shift) where
    ``region``, under any of the eight flips/turns, agrees within 1 / ``max_peak_ratio`` of the partner's residual
    (separate places: connected components of the sum-of-squares map); None when it cannot be measured."""
    ys, xs = np.nonzero(region)
    if len(ys) < MIN_MEASURED:
        return None
    image = ctx.lowpass()[0] if ctx.signed_compression is not None else ctx.smooth
    y0, x0 = int(ys.min()), int(xs.min())
    template = np.ascontiguousarray(image[y0 : ys.max() + 1, x0 : xs.max() + 1])
    mask = region[y0 : ys.max() + 1, x0 : xs.max() + 1].astype(np.float32)
    th, tw = template.shape
    if max(th, tw) >= min(image.shape):
        return None
    corners = np.array([[0, 0], [tw - 1, 0], [0, th - 1], [tw - 1, th - 1]], np.float64)
    placed = corners + np.array([x0, y0], np.float64)
    px, py = np.round(placed @ to_partner[:, :2].T + to_partner[:, 2]).min(axis=0).astype(int)
    shift = ctx.params.peak_shift_px
    maps = []
    best = None
    for turn, ssd in _turned_ssd(image, template, mask):
        own = np.allclose(turn, to_partner[:, :2])
        if own:
            if not (0 <= py < ssd.shape[0] and 0 <= px < ssd.shape[1]):
                return None
            best = float(ssd[max(py - 1, 0) : py + 2, max(px - 1, 0) : px + 2].min())
        maps.append((ssd, own, np.array_equal(turn, np.eye(2))))
    if best is None:
        return None
    sites = 0
    for ssd, own, plain in maps:
        rivals = ssd <= best / max(ctx.params.max_peak_ratio, 1e-6) ** 2
        if own:
            rivals[max(py - shift, 0) : py + shift + 1, max(px - shift, 0) : px + shift + 1] = False  # the partner
        if plain:
            rivals[max(y0 - shift, 0) : y0 + shift + 1, max(x0 - shift, 0) : x0 + shift + 1] = False  # itself
        sites += cv2.connectedComponents(rivals.astype(np.uint8), connectivity=8)[0] - 1
    return sites


def _placed(mask: np.ndarray, crop: tuple[slice, slice], shape: tuple[int, int]) -> np.ndarray:
    """A crop's mask placed in a full-size array."""
    full = np.zeros(shape, bool)
    full[crop] = mask
    return full


def _exact_part(
    core: np.ndarray, fit_error: np.ndarray, non_flat: np.ndarray, window: int, min_area: float
) -> np.ndarray:
    """The connected pieces of ``core`` that repeat exactly (window-mean residual near zero on non-flat
    pixels) and are each large enough to be a copy on their own; ``core`` unchanged when there are none.

    In smooth, low-noise images (blots, gels) neighbouring background agrees within the noise as well,
    so the agreeing core can be several times the copy; an untouched copy is the only thing that agrees
    exactly over a whole window, so its pixels alone then make the core (and the residual tests judge them).
    Small exact pieces are left out: the dots of a printed lattice repeat exactly one by one.
    """
    exact = (core & non_flat & (_box(fit_error, window) <= EXACT_GREY)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(exact, connectivity=8)
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= max(min_area, 1.0))
    big = big[big > 0]
    return np.isin(labels, big) if len(big) else core


def _same_colours(
    ctx: VerifyContext,
    warp: np.ndarray,
    crop: tuple[slice, slice],
    measured: np.ndarray,
    tolerance: float,
    claimed: np.ndarray | None = None,
) -> bool:
    """Whether every colour channel of the copy agrees with its source (each with its own gain/offset) about
    as well as the grey image does (``tolerance``: the larger of the grey residual and its allowance). A copy
    keeps its colours; a fluorescence channel beside the merge it is part of agrees in grey but not in the
    channels the merge adds. Grey figures pass."""
    rgb = ctx.work.rgb
    if not measured.any() or int(np.abs(rgb[crop].astype(np.int16) - rgb[crop][:, :, :1]).max()) <= 2:
        return True
    size = (measured.shape[1], measured.shape[0])
    target = rgb[crop].astype(np.float32)
    source = cv2.warpAffine(rgb, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    allowed = np.maximum(COLOUR_SLACK * tolerance + 0.5, ctx.params.compression_ratio * ctx.colour_jpeg(crop, measured))
    fits = [fit_residual(target[:, :, c][measured], source[:, :, c][measured]) for c in range(3)]
    if any(fit[0] > allowed[c] for c, fit in enumerate(fits)):
        return False  # chroma is stored coarser than luma (JPEG, 4:2:0): each channel within its JPEG allowance
    if ctx.compression is None or measured.sum() < MIN_MEASURED:
        return True
    # a merge adds another channel's objects: after JPEG its median residual hides among the chroma error, but its
    # tail does not. Like with like: each channel's 99th-percentile residual against the 99th percentile of the
    # figure's own colour JPEG errors at the same two places, through the same warp and gain; judged on the copy's
    # interior (a window inside the measured core: a pasted copy may be blended into its surroundings at its edge)
    # (and, at colour_region_tail_ratio, on the interior of the whole claimed copy: a channel's objects the merge adds
    # lie beside the agreeing core, inside the region that hangs together with it)
    window = ctx.params.window
    error = ctx.signed_colour_jpeg()
    error_w = cv2.warpAffine(error, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    checks = [(measured, ctx.params.colour_tail_ratio)]
    if claimed is not None:
        checks.append((claimed, ctx.params.colour_region_tail_ratio))
    for mask, ratio in checks:
        if ratio <= 0:
            continue
        interior = cv2.erode(mask.astype(np.uint8), np.ones((window, window), np.uint8)).astype(bool)
        if interior.sum() < MIN_MEASURED:
            continue
        for c in range(3):
            _, gain, offset = fit_residual(target[:, :, c][interior], source[:, :, c][interior])
            tail = np.percentile(np.abs(target[:, :, c][interior] - gain * source[:, :, c][interior] - offset), 99)
            expected = np.percentile(np.abs(error[crop][:, :, c][interior] - gain * error_w[:, :, c][interior]), 99)
            if tail > ratio * max(float(expected), 0.5):
                return False
    return True


def effective_samples(image: np.ndarray, region: np.ndarray) -> float:
    """How many independent samples of detail ``region`` of ``image`` holds: its area over the area of one
    correlation cell. For a smooth random field with variance s² and correlation length l, the gradient's
    mean square is 2 s² / l², and one cell covers about 2 pi l² px, so n = area * E|grad|² / (4 pi s²).
    A smooth band edge or a blurred blob holds a handful, however many pixels it covers: agreeing on it
    proves nothing; a copied patch of grainy or detailed content holds hundreds."""
    if region.sum() < 8:
        return 0.0
    gy, gx = np.gradient(image)
    energy = float((gx * gx + gy * gy)[region].mean())
    variance = float(image[region].var())
    if variance < 1e-6:
        return 0.0
    return float(region.sum()) * energy / (4.0 * np.pi * variance)


def near_dihedral(affine: np.ndarray) -> bool:
    """Whether a transform is within ``NEAR_SCALE`` of unit scale and ``NEAR_DEG`` of a quarter turn."""
    angle = rotation_deg(affine) % 90.0
    return abs(scale_of(affine) - 1.0) <= NEAR_SCALE and min(angle, 90.0 - angle) <= NEAR_DEG


def snap_dihedral(affine: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The flip/turn + translation nearest ``affine``, agreeing with it at ``centre`` (x, y) of the source."""
    linear = np.round(affine[:, :2] / max(scale_of(affine), 1e-6))
    if abs(abs(np.linalg.det(linear)) - 1.0) > 1e-6:
        return affine
    target = affine[:, :2] @ centre + affine[:, 2]
    return np.hstack([linear, (target - linear @ centre)[:, None]])


def _snapped_exact(
    ctx: VerifyContext, affine: np.ndarray, measured: np.ndarray, crop: tuple[slice, slice], tolerance: float
) -> bool:
    """Whether the copy holds the same pixels as its source under the nearest flip/turn + shift (best whole
    or sub-pixel shift found by ECC), within ``tolerance`` grey levels."""
    return _plain_residual(ctx, affine, measured, crop) <= tolerance


def _plain_residual(ctx: VerifyContext, affine: np.ndarray, measured: np.ndarray, crop: tuple[slice, slice]) -> float:
    """Residual (grey levels) of the copy (``measured``, in ``crop``) against its source under the flip/turn +
    shift nearest ``affine`` (the shift refined by ECC, so interpolated like the resampled warp): what a plain
    alignment of the same two regions leaves."""
    ys, xs = np.nonzero(measured)
    if len(ys) == 0:
        return float("inf")
    y0, x0 = crop[0].start, crop[1].start
    copy_centre = np.array([xs.mean() + x0, ys.mean() + y0])
    inverse = np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]]))[:2]
    snapped = snap_dihedral(affine, inverse[:, :2] @ copy_centre + inverse[:, 2])
    snapped = refine_translation(ctx.gray, snapped, measured, (int(y0), int(x0)))
    to_crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    size = (measured.shape[1], measured.shape[0])
    warped = cv2.warpAffine(
        ctx.gray, compose(to_crop, snapped), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return fit_residual(ctx.gray[crop][measured], warped[measured])[0]


def resampled(affine: np.ndarray) -> bool:
    """Whether the transform interpolates (scale off 1, or a turn that is not a multiple of 90°)."""
    angle = rotation_deg(affine) % 90.0
    return abs(scale_of(affine) - 1.0) > 0.01 or min(angle, 90.0 - angle) > 1.0


def _involutive_points(affine: np.ndarray, points: np.ndarray) -> bool:
    """Whether applying the transform twice returns (within 2 px) the corners of the points' box."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    corners = np.array([lo, [hi[0], lo[1]], [lo[0], hi[1]], hi], np.float64)
    return float(np.abs(apply(compose(affine, affine), corners) - corners).max()) <= 2.0


def _split_partners(
    region: np.ndarray, affine: np.ndarray, min_offset: float, max_self: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Split a region that agrees with itself under an involution (a mirror, a half turn) into its halves.

    Every pixel moves by ``A(p) - p``, which points from one half to the other and vanishes on the mirror
    axis (or the turn's centre); the sign of its component along the main displacement direction tells
    the halves apart. Pixels moving less than ``min_offset`` sit on the axis: when they are more than
    ``max_self`` of the region, it is a symmetric object, not a copy (None).
    """
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    moves = apply(affine, points) - points
    _, _, vt = np.linalg.svd(moves - 0.0, full_matrices=False)
    along = moves @ vt[0]
    if (np.abs(along) < min_offset).mean() > max_self:
        return None
    src, dst = np.zeros_like(region), np.zeros_like(region)
    src[ys[along > 0], xs[along > 0]] = True
    dst[ys[along < 0], xs[along < 0]] = True
    return src, dst


def _partial_overlap(src: np.ndarray, dst: np.ndarray) -> int:
    """Pixels shared by source and copy, except whole copies that are also sources (a chain of copies,
    ``S -> C1 -> C2`` at one offset, shares ``C1`` entirely; a smear of a region over itself shares parts)."""
    shared = src & dst
    if not shared.any():
        return 0
    n, labels = cv2.connectedComponents(dst.astype(np.uint8), connectivity=8)
    inside = np.bincount(labels[shared], minlength=n) / np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    chained = inside >= CHAIN_SHARE
    return int((shared & ~chained[labels]).sum())


def _connected_to(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Components of ``mask`` that contain a ``seed`` pixel."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    hit = np.zeros(n, bool)
    hit[np.unique(labels[seed & mask])] = True
    hit[0] = False
    return hit[labels]


def _hull(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull of a mask's pixels."""
    ys, xs = np.nonzero(mask)
    out = np.zeros(mask.shape, np.uint8)
    if len(xs) >= 3:
        hull = cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool)


def _seed_mask(seeds: np.ndarray, shape: tuple[int, int], window: int) -> np.ndarray:
    """Pixels within ``window`` of a seed point."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    x = np.round(seeds[:, 0]).astype(np.int64)
    y = np.round(seeds[:, 1]).astype(np.int64)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    mask[y[inside], x[inside]] = 1
    return cv2.dilate(mask, np.ones((window, window), np.uint8)).astype(bool)


def _touching(agree: np.ndarray, seeds: np.ndarray, window: int) -> np.ndarray:
    """Components of ``agree`` within ``window`` pixels of a seed point."""
    n, labels = cv2.connectedComponents(agree.astype(np.uint8), connectivity=8)
    if n <= 1 or len(seeds) == 0:
        return np.zeros_like(agree)
    h, w = agree.shape
    seed_mask = np.zeros((h, w), np.uint8)
    x = np.round(seeds[:, 0]).astype(np.int64)
    y = np.round(seeds[:, 1]).astype(np.int64)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    seed_mask[y[inside], x[inside]] = 1
    seed_mask = cv2.dilate(seed_mask, np.ones((window, window), np.uint8))
    hit = np.zeros(n, bool)
    hit[np.unique(labels[seed_mask.astype(bool)])] = True
    hit[0] = False
    return hit[labels]


def _sharpness(image: np.ndarray, warped: np.ndarray, region: np.ndarray, shift: int) -> tuple[float, float, float]:
    """(residual at the transform in grey levels, the same normalised by the region's spread, its ratio
    to the best residual ``shift`` pixels away in the four axis directions)."""
    target = image[region]
    r0, _, _ = fit_residual(target, warped[region])
    spread = float(target.std()) + 1e-6
    shifted = []
    for dx, dy in ((shift, 0), (-shift, 0), (0, shift), (0, -shift)):
        r, _, _ = fit_residual(target, _shift(warped, dx, dy)[region])
        shifted.append(r)
    best = min(shifted)
    return r0, r0 / spread, (r0 / best) if best > 1e-6 else 1.0
