"""Panel-pair search: whole, mirrored, turned, zoomed and partly overlapping duplicates of panels.

The most common forgery of compound figures is one panel repeated in another one (whole, flipped or
turned, zoomed in on a part, or two fields of view sharing part of the scene). Smooth blots give too few
keypoints for that, so panels are also compared as images:

1. every matchable panel becomes a small thumbnail (its longer side a fixed number of pixels at the
   figure's largest panel, so all thumbnails share one scale); text overlays and page pixels are masked;
2. for every pair of panels, every one of the eight flips/turns of the square and a few zoom factors,
   the zero-normalised cross-correlation over the overlap of the two thumbnails is computed for every
   shift at once with FFTs (masked normalised cross-correlation, Padfield 2012); overlaps smaller than a
   share of the smaller panel do not count;
3. the best-correlated pairs become candidate transforms, refined at working resolution (ECC) and
   handed to the figure-level verification, which stays the judge of "copied, not merely similar".
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import fft

from models.matcher.config import PanelPairParams
from models.matcher.geometry import Candidate, compose, invert
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage

TRANSFORMS = ("identity", "flip_h", "flip_v", "rot180", "rot90", "rot270", "transpose", "transverse")
QUARTER = ("rot90", "rot270", "transpose", "transverse")  # these swap height and width
SQUARISH = 1.6  # quarter turns are searched only between panels this close to square (aspect ratio)
EPS = 1e-3
FINE = 2.5  # the fine thumbnails are this many times the coarse ones
FINE_POOL = 3  # coarse matches measured again finely, per final candidate
FINE_ZOOMS = (0.92, 0.96, 1.0, 1.04, 1.08)  # around a coarse zoom step (2^0.25 apart)
ECC_BLURS = (5, 1)  # Gaussian pre-filter sizes of the two ECC refinement passes
ECC_HALF_MIN_SIDE = 16  # px: the first ECC pass runs at half size when the copy's box keeps this side there
SCREEN_SCALE = 0.5  # the screening pass's thumbnails, share of the search thumbnails' size
SCREEN_MIN_SIDE = 12  # px: smaller screening thumbnails are not screened


def transform_array(image: np.ndarray, name: str) -> np.ndarray:
    """One of the eight flips/turns of the square applied to an array's first two axes."""
    ops = {
        "identity": lambda a: a,
        "flip_h": lambda a: a[:, ::-1],
        "flip_v": lambda a: a[::-1],
        "rot180": lambda a: a[::-1, ::-1],
        "rot90": lambda a: np.rot90(a, 1),
        "rot270": lambda a: np.rot90(a, 3),
        "transpose": lambda a: np.swapaxes(a, 0, 1),
        "transverse": lambda a: np.rot90(a, 2).swapaxes(0, 1),
    }
    return np.ascontiguousarray(ops[name](image))


class _Thumb:
    """A panel at thumbnail scale: grey values and a validity mask (both float32)."""

    def __init__(self, gray: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], scale: float):
        y0, x0, y1, x1 = box
        h, w = y1 - y0, x1 - x0
        self.box = box
        size = (max(4, round(w * scale)), max(4, round(h * scale)))
        crop_mask = mask[y0:y1, x0:x1].astype(np.float32)
        self.mask = (cv2.resize(crop_mask, size, interpolation=cv2.INTER_AREA) > 0.9).astype(np.float32)
        self.gray = cv2.resize(gray[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        self.sy, self.sx = size[1] / h, size[0] / w  # thumbnail px per working px


def _spectra(gray: np.ndarray, mask: np.ndarray, shape: tuple[int, int], flip: bool) -> np.ndarray:
    """rFFTs of (mask, gray * mask, gray² * mask), flipped for the moving side of a correlation.

    The grey values are centred on the valid pixels' mean first: correlation is blind to it, and float32
    sums of squares of 0-255 values would lose a faint blot's variance (sum x² - (sum x)² / n) to rounding."""
    valid = mask > 0
    centred = gray - np.float32(gray[valid].mean() if valid.any() else 0.0)
    g = centred * mask
    stack = np.stack([mask, g, g * centred])
    if flip:
        stack = stack[:, ::-1, ::-1]
    return fft.rfft2(stack, s=shape, workers=1)


def pair_shape(fixed: tuple[int, int], moving: tuple[int, int]) -> tuple[int, int]:
    """The smallest fast FFT shape holding every shift of ``moving`` on ``fixed`` without wrap-around (rows and
    columns sized apart: a wide blot strip pays for its own rows, not for a square)."""
    return fft.next_fast_len(fixed[0] + moving[0] - 1, True), fft.next_fast_len(fixed[1] + moving[1] - 1, True)


class _Spectra(dict):
    """A panel's source-side spectra per FFT shape, computed when first needed."""

    def __init__(self, thumbs: dict[int, _Thumb]):
        super().__init__()
        self.thumbs = thumbs

    def of(self, k: int, shape: tuple[int, int]) -> np.ndarray:
        if (k, shape) not in self:
            self[k, shape] = _spectra(self.thumbs[k].gray, self.thumbs[k].mask, shape, False)
        return self[k, shape]


def masked_zncc(
    fixed: tuple[np.ndarray, np.ndarray],
    moving: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
    min_overlap: float,
    spectra: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, int, int, float]:
    """Best ZNCC over the overlap of ``moving`` placed at every shift on ``fixed`` (overlap >= ``min_overlap``
    valid pixels); returns ``(zncc, dy, dx, overlap)``: moving pixel ``(y, x)`` lands on fixed ``(y + dy, x + dx)``."""
    f, mf = fixed
    g, mg = moving
    sa = spectra[0] if spectra is not None else _spectra(f, mf, shape, False)
    sb = spectra[1] if spectra is not None else _spectra(g, mg, shape, True)
    products = np.stack([sa[0] * sb[0], sa[1] * sb[0], sa[2] * sb[0], sa[0] * sb[1], sa[0] * sb[2], sa[1] * sb[1]])
    n, sf, sff, sg, sgg, sfg = fft.irfft2(products, s=shape, workers=1)
    h = f.shape[0] + g.shape[0] - 1
    w = f.shape[1] + g.shape[1] - 1
    n, sf, sff, sg, sgg, sfg = (a[:h, :w] for a in (n, sf, sff, sg, sgg, sfg))
    n = np.round(n)
    ok = n >= max(min_overlap, 8)
    if not ok.any():
        return -1.0, 0, 0, 0.0
    safe = np.maximum(n, 1)
    var_f = np.maximum(sff - sf * sf / safe, 0)
    var_g = np.maximum(sgg - sg * sg / safe, 0)
    cov = sfg - sf * sg / safe
    # flat overlaps (a few grey levels of spread) correlate by chance: they do not count
    textured = ok & (var_f > safe) & (var_g > safe)
    zncc = np.where(textured, cov / np.sqrt(var_f * var_g + EPS), -1.0)
    p, q = np.unravel_index(int(np.argmax(zncc)), zncc.shape)
    return float(zncc[p, q]), int(p - (g.shape[0] - 1)), int(q - (g.shape[1] - 1)), float(n[p, q])


def _point_map(shape: tuple[int, int], name: str) -> tuple[np.ndarray, np.ndarray]:
    """For the transformed array of an ``shape`` array: the original column and row of each pixel."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return transform_array(cols, name), transform_array(rows, name)


def _affine(src: _Thumb, dst: _Thumb, name: str, moving_shape: tuple[int, int], dy: int, dx: int) -> np.ndarray | None:
    """Working-resolution affine (source panel -> copy panel) of a thumbnail match.

    ``moving`` is the copy's thumbnail transformed by ``name`` and resized to ``moving_shape``; its pixel
    ``(y, x)`` lies on source thumbnail pixel ``(y + dy, x + dx)``.
    """
    cols, rows = _point_map(dst.gray.shape, name)
    th, tw = cols.shape
    if min(th, tw) < 2:
        return None
    grid = np.float32([[0, 0], [tw - 1, 0], [0, th - 1]])
    original = np.float32(
        [[cols[0, 0], rows[0, 0]], [cols[0, tw - 1], rows[0, tw - 1]], [cols[th - 1, 0], rows[th - 1, 0]]]
    )
    to_original = cv2.getAffineTransform(grid, original).astype(np.float64)  # transformed -> original thumb px
    mh, mw = moving_shape
    src_pts, dst_pts = [], []
    for x, y in ((0, 0), (mw - 1, 0), (0, mh - 1)):
        # moving (resized) -> transformed thumbnail (pixel centres) -> original thumbnail -> working px
        t = np.array([(x + 0.5) * tw / mw - 0.5, (y + 0.5) * th / mh - 0.5])
        oc, orow = to_original[:, :2] @ t + to_original[:, 2]
        dst_pts.append([dst.box[1] + (oc + 0.5) / dst.sx - 0.5, dst.box[0] + (orow + 0.5) / dst.sy - 0.5])
        src_pts.append([src.box[1] + (x + dx + 0.5) / src.sx - 0.5, src.box[0] + (y + dy + 0.5) / src.sy - 0.5])
    affine = cv2.getAffineTransform(np.float32(src_pts), np.float32(dst_pts)).astype(np.float64)
    return affine if np.isfinite(affine).all() else None


def refine_affine(gray: np.ndarray, affine: np.ndarray, region: np.ndarray) -> np.ndarray:
    """ECC refinement (affine motion) of ``affine`` over the copy pixels ``region``; unchanged on failure.

    Two passes: with ECC's Gaussian pre-filter (a wide basin for a start a zoom step off), then without it
    (the filter blurs a zoomed copy and its source by different amounts in their own pixels, which biases
    the scale; unfiltered, the fit is exact to a fraction of a pixel)."""
    ys, xs = np.nonzero(region)
    if len(ys) < 64:
        return affine
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    template = np.ascontiguousarray(gray[y0:y1, x0:x1])
    mask = np.ascontiguousarray(region[y0:y1, x0:x1]).astype(np.uint8) * 255
    everywhere = np.full(gray.shape, 255, np.uint8)
    warp = compose(invert(affine), np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])).astype(np.float32)
    # the wide-basin pass runs at half size (a quarter of the work; its job is to get close), the exact pass
    # at full size from there: x_half = S x = x / 2 - 1/4 on pixel centres, so warp_half = S warp S^-1
    to_half = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25]])
    to_full = invert(to_half)
    try:
        if min(template.shape) >= 2 * ECC_HALF_MIN_SIDE:
            half_warp = compose(to_half, compose(warp.astype(np.float64), to_full)).astype(np.float32)
            _, half_warp = cv2.findTransformECCWithMask(
                _half(template),
                _half(gray),
                (_half(mask) > 127).astype(np.uint8) * 255,
                _half(everywhere),
                half_warp,
                cv2.MOTION_AFFINE,
                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5),
                ECC_BLURS[0] // 2 + 1,
            )
            warp = compose(to_full, compose(half_warp.astype(np.float64), to_half)).astype(np.float32)
            blurs = ECC_BLURS[1:]
        else:
            blurs = ECC_BLURS
        for blur in blurs:
            # the mask marks the copy's pixels in the template (plain findTransformECC masks the input image)
            _, warp = cv2.findTransformECCWithMask(
                template,
                gray,
                mask,
                everywhere,
                warp,
                cv2.MOTION_AFFINE,
                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5),
                blur,
            )
    except cv2.error:
        return affine
    refined = invert(compose(warp.astype(np.float64), np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])))
    moved = np.abs(refined - affine)[:, 2].max()
    if not np.isfinite(refined).all() or moved > 0.1 * math.hypot(y1 - y0, x1 - x0):
        return affine
    return refined


def _half(image: np.ndarray) -> np.ndarray:
    """Half-size copy (area average; an odd last row/column is dropped)."""
    h, w = image.shape[:2]
    return cv2.resize(image[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def _seeds(affine: np.ndarray, src_box, dst_box, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A grid of copy-side points whose source lies in the source panel, and their sources."""
    y0, x0, y1, x1 = dst_box
    ys, xs = np.mgrid[y0 + 2 : y1 - 2 : max(1, (y1 - y0) // 12), x0 + 2 : x1 - 2 : max(1, (x1 - x0) // 12)]
    dst = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    inv = invert(affine)
    src = dst @ inv[:, :2].T + inv[:, 2]
    sy0, sx0, sy1, sx1 = src_box
    inside = (src[:, 0] >= sx0) & (src[:, 0] < sx1 - 1) & (src[:, 1] >= sy0) & (src[:, 1] < sy1 - 1)
    h, w = content.shape
    on = content[np.clip(dst[:, 1].astype(int), 0, h - 1), np.clip(dst[:, 0].astype(int), 0, w - 1)]
    keep = inside & on
    return src[keep], dst[keep]


def panel_pair_candidates(
    work: WorkingImage, layout: Layout, content: np.ndarray, params: PanelPairParams
) -> list[Candidate]:
    """Candidate transforms between panels that look like one another under a flip/turn and a zoom."""
    if not params.enabled:
        return []
    panels = [
        (k, p)
        for k, p in enumerate(layout.panels)
        if p.matchable and min(p.box[2] - p.box[0], p.box[3] - p.box[1]) >= params.min_panel_side
    ]
    panels = sorted(panels, key=lambda kp: -kp[1].area)[: params.max_panels]
    if len(panels) < 2:
        return []
    longest = max(max(p.box[2] - p.box[0], p.box[3] - p.box[1]) for _, p in panels)
    scale = min(1.0, params.thumb_side / longest)
    thumbs = {k: _Thumb(work.gray, content, p.box, scale) for k, p in panels}
    screen = _Screen(work.gray, content, {k: p.box for k, p in panels}, scale, params) if params.screen else None
    found = _coarse_matches(thumbs, [k for k, _ in panels], params, screen)
    # the best coarse matches are measured again on thumbnails FINE x larger, the zoom searched finely around
    # its coarse step: this ranks true copies above look-alikes and places them to a fraction of a pixel
    fine_scale = min(1.0, FINE * scale)
    fine: dict[int, _Thumb] = {}
    fine_spectra = _Spectra(fine)  # a source's spectra, per FFT shape
    ranked = []
    pairs_seen: dict[tuple[int, int], int] = {}
    for score, src, dst, name, moving_shape, _, _ in found:
        if score < params.min_zncc or len(ranked) >= FINE_POOL * params.max_candidates:
            break
        key = (min(src, dst), max(src, dst))
        if pairs_seen.get(key, 0) >= FINE_POOL * params.per_pair:
            continue
        pairs_seen[key] = pairs_seen.get(key, 0) + 1
        for k in (src, dst):
            if k not in fine:
                fine[k] = _Thumb(work.gray, content, layout.panels[k].box, fine_scale)
        coarse_zoom = transform_array(thumbs[dst].gray, name).shape[0] / moving_shape[0]
        ranked.append(_fine_match(fine[src], fine[dst], src, dst, name, coarse_zoom, params, fine_spectra))
    ranked.sort(key=lambda item: -item[0])
    candidates: list[Candidate] = []
    pairs_seen = {}
    for score, src, dst, name, moving_shape, dy, dx in ranked:
        if score < params.min_zncc or len(candidates) >= params.max_candidates:
            break
        key = (min(src, dst), max(src, dst))
        if pairs_seen.get(key, 0) >= params.per_pair:
            continue
        affine = _affine(fine[src], fine[dst], name, moving_shape, dy, dx)
        if affine is None:
            continue
        src_box, dst_box = fine[src].box, fine[dst].box
        _, dst_pts = _seeds(affine, src_box, dst_box, content)
        if len(dst_pts) < 4:
            continue
        region = np.zeros(work.shape, bool)
        y0, x0, y1, x1 = dst_box
        inv = invert(affine)
        yy, xx = np.nonzero(content[y0:y1, x0:x1])
        sxy = np.stack([xx + x0, yy + y0], axis=1) @ inv[:, :2].T + inv[:, 2]
        sy0, sx0, sy1, sx1 = src_box
        inside = (sxy[:, 0] >= sx0) & (sxy[:, 0] < sx1 - 1) & (sxy[:, 1] >= sy0) & (sxy[:, 1] < sy1 - 1)
        region[yy[inside] + y0, xx[inside] + x0] = True
        affine = refine_affine(work.gray, affine, region)
        src_pts, dst_pts = _seeds(affine, src_box, dst_box, content)
        if len(dst_pts) < 4:
            continue
        pairs_seen[key] = pairs_seen.get(key, 0) + 1
        candidates.append(
            Candidate(
                affine=affine,
                src_pts=src_pts,
                dst_pts=dst_pts,
                origin="panels",
                support=round(100 * score),
                src_panel=src,
                dst_panel=dst,
                extra={"transform": name, "zncc": score},
            )
        )
    return candidates


def _fine_match(
    src: _Thumb,
    dst: _Thumb,
    src_k: int,
    dst_k: int,
    name: str,
    zoom: float,
    params: PanelPairParams,
    source_spectra: _Spectra,
):
    """The best shift (and zoom, within a coarse step) of one coarse match on the fine thumbnails
    (``source_spectra``: the sources' spectra per FFT shape, filled as they are needed)."""
    g = transform_array(dst.gray, name)
    m = transform_array(dst.mask, name)
    zooms = [1.0] if abs(zoom - 1.0) < 0.02 else [zoom * f for f in FINE_ZOOMS]
    best = (-1.0, src_k, dst_k, name, g.shape, 0, 0)
    for z in zooms:
        mh, mw = max(4, round(g.shape[0] / z)), max(4, round(g.shape[1] / z))
        gz = cv2.resize(g, (mw, mh), interpolation=cv2.INTER_AREA) if z != 1.0 else g
        mz = (cv2.resize(m, (mw, mh), interpolation=cv2.INTER_AREA) > 0.9).astype(np.float32) if z != 1.0 else m
        smaller = min(float(src.mask.sum()), float(mz.sum()))
        shape = pair_shape(src.gray.shape, gz.shape)
        spectra = (source_spectra.of(src_k, shape), _spectra(gz, mz, shape, True))
        score, dy, dx, _ = masked_zncc((src.gray, src.mask), (gz, mz), shape, params.min_overlap * smaller, spectra)
        if score > best[0]:
            best = (score, src_k, dst_k, name, (mh, mw), dy, dx)
    return best


class _Screen:
    """The same search on thumbnails half as large (a quarter of the FFT work): a combination whose
    correlation there falls short of ``min_zncc`` by more than ``params.screen_margin`` is not searched on
    the thumbnails. A copy stays a copy at any resolution (its correlation only rises as detail averages
    out), so the screen drops look-alikes and unrelated pairs, not copies. Thumbnails with a side under
    ``SCREEN_MIN_SIDE`` px at that scale are too small to screen and are always searched."""

    def __init__(self, gray, content, boxes: dict[int, tuple[int, int, int, int]], scale: float, params):
        self.thumbs = {k: _Thumb(gray, content, box, SCREEN_SCALE * scale) for k, box in boxes.items()}
        self.spectra = _Spectra(self.thumbs)
        self.floor = params.min_zncc - params.screen_margin
        self.min_overlap = params.min_overlap
        self.moving: dict[tuple[int, str, float], _Moving] = {}  # per (copy, transform, zoom)

    def passes(self, src: int, dst: int, name: str, zoom: float) -> bool:
        source = self.thumbs[src]
        if min(source.gray.shape) < SCREEN_MIN_SIDE or min(self.thumbs[dst].gray.shape) < SCREEN_MIN_SIDE:
            return True
        key = (dst, name, zoom)
        if key not in self.moving:
            self.moving[key] = _Moving(self.thumbs[dst], name, zoom)
        moving = self.moving[key]
        if min(moving.gray.shape) < SCREEN_MIN_SIDE // 2:
            return True
        smaller = min(float(source.mask.sum()), moving.area)
        shape = pair_shape(source.gray.shape, moving.gray.shape)
        score, *_ = masked_zncc(
            (source.gray, source.mask),
            (moving.gray, moving.mask),
            shape,
            self.min_overlap * smaller,
            (self.spectra.of(src, shape), moving.spectra(shape)),
        )
        return score >= self.floor


class _Moving:
    """A copy's thumbnail transformed by ``name`` and shrunk by ``zoom``: grey, mask, mask area, and its
    (flipped) spectra per FFT shape, computed when first needed."""

    def __init__(self, thumb: _Thumb, name: str, zoom: float):
        g = transform_array(thumb.gray, name)
        m = transform_array(thumb.mask, name)
        mh, mw = round(g.shape[0] / zoom), round(g.shape[1] / zoom)
        self.gray = cv2.resize(g, (mw, mh), interpolation=cv2.INTER_AREA) if zoom != 1.0 else g
        mz = m if zoom == 1.0 else (cv2.resize(m, (mw, mh), interpolation=cv2.INTER_AREA) > 0.9)
        self.mask = mz.astype(np.float32)
        self.area = float(self.mask.sum())
        self._spectra: dict[tuple[int, int], np.ndarray] = {}

    def spectra(self, shape: tuple[int, int]) -> np.ndarray:
        if shape not in self._spectra:
            self._spectra[shape] = _spectra(self.gray, self.mask, shape, True)
        return self._spectra[shape]


def _coarse_matches(thumbs: dict[int, _Thumb], keys: list[int], params: PanelPairParams, screen: _Screen | None = None):
    """Best shift of every panel (as the copy) on every other one (as the source), per transform and zoom,
    best first. Zoom 1 is searched once per pair (its reverse is the same match); each copy's transformed
    and zoomed thumbnail and its spectra are computed once and met with every source."""
    out = []
    fixed_spectra = _Spectra(thumbs)
    zooms = (1.0, *params.zooms)
    for dst_pos, dst in enumerate(keys):
        target = thumbs[dst]
        for t, name in enumerate(TRANSFORMS):
            gh, gw = target.gray.shape[::-1] if name in QUARTER else target.gray.shape  # after the transform
            for z, zoom in enumerate(zooms):
                mh, mw = round(gh / zoom), round(gw / zoom)
                moving = None
                for src_pos, src in enumerate(keys):
                    if src == dst or (zoom == 1.0 and src_pos > dst_pos):
                        continue
                    source = thumbs[src]
                    sh, sw = source.gray.shape
                    if name in QUARTER and max(_aspect(source.gray.shape), _aspect(target.gray.shape)) > SQUARISH:
                        continue
                    if zoom > 1.0 and (mh > sh * 1.05 or mw > sw * 1.05 or min(mh, mw) < 6):
                        continue  # a zoomed copy shows part of its source: it must fit inside it
                    if screen is not None and not screen.passes(src, dst, name, zoom):
                        continue
                    if moving is None:
                        moving = _Moving(target, name, zoom)
                    smaller = min(float(source.mask.sum()), moving.area)
                    shape = pair_shape(source.gray.shape, moving.gray.shape)
                    score, dy, dx, _ = masked_zncc(
                        (source.gray, source.mask),
                        (moving.gray, moving.mask),
                        shape,
                        params.min_overlap * smaller,
                        (fixed_spectra.of(src, shape), moving.spectra(shape)),
                    )
                    # the order of the former pair-by-pair loop breaks ties between equal scores
                    first, second = sorted((src_pos, dst_pos))
                    order = (first, second, src_pos > dst_pos, t, z)
                    out.append((order, (score, src, dst, name, (mh, mw), dy, dx)))
    out.sort(key=lambda item: item[0])
    found = [match for _, match in out]
    found.sort(key=lambda item: -item[0])
    return found


def _aspect(shape: tuple[int, int]) -> float:
    return max(shape) / max(1, min(shape))
