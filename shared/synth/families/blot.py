"""Western blot strips and DNA gels: lanes of bands on film-like backgrounds.

A band is a flat-topped lane-wide profile times an asymmetric vertical profile with a smear tail and a
slight smile/frown curvature; darkness goes through a saturating film response, then background
gradient, blotches and film grain are added. Loading-control strips render every lane from one band
template (near-identical bands: a hard negative), gels carry ladders (a regular pattern).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from shared.synth.figure import Negative, Obj, Panel
from shared.synth.textures import grain, smooth_noise, to_uint8


@dataclass(frozen=True)
class BlotStyle:
    """Film/scan look shared by the strips of one blot block."""

    paper: float  # background level in [0, 1]
    ink: float  # darkest level reachable
    gain: float  # film response steepness
    grain: float  # grain sigma (in [0, 1] units)
    blotch: float  # amplitude of low-frequency background unevenness
    tint: tuple[float, float, float]
    inverted: bool  # bright bands on a dark background (gels, some scanners)
    smear: float  # typical smear tail strength
    sharp: float  # flat-top exponent of the lateral profile


def random_style(rng: np.random.Generator, inverted: bool = False) -> BlotStyle:
    tint_kind = rng.random()
    if tint_kind < 0.75:
        tint = (1.0, 1.0, 1.0)
    elif tint_kind < 0.9:
        tint = (1.0, float(rng.uniform(0.96, 1.0)), float(rng.uniform(0.88, 0.97)))  # warm film scan
    else:
        tint = (float(rng.uniform(0.9, 0.97)), float(rng.uniform(0.95, 1.0)), 1.0)  # cool scan
    if inverted:
        paper, ink = float(rng.uniform(0.0, 0.18)), float(rng.uniform(0.85, 1.0))
    else:
        paper = float(rng.uniform(0.78, 0.98)) if rng.random() < 0.8 else float(rng.uniform(0.55, 0.8))
        ink = float(rng.uniform(0.0, 0.18))
    return BlotStyle(
        paper=paper,
        ink=ink,
        gain=float(rng.uniform(1.2, 3.5)),
        grain=float(rng.uniform(0.004, 0.03)),
        blotch=float(rng.uniform(0.0, 0.08)),
        tint=tint,
        inverted=inverted,
        smear=float(rng.uniform(0.0, 0.5)),
        sharp=float(rng.uniform(2.0, 6.0)),
    )


def lane_layout(rng: np.random.Generator, width: int, n_lanes: int) -> tuple[np.ndarray, float]:
    """Lane centres (px) and half-width for a strip of ``width`` px."""
    margin = width * float(rng.uniform(0.02, 0.08))
    pitch = (width - 2 * margin) / n_lanes
    centres = margin + pitch * (np.arange(n_lanes) + 0.5)
    centres += rng.uniform(-0.03, 0.03, n_lanes) * pitch
    return centres, pitch * float(rng.uniform(0.3, 0.44))


@dataclass(frozen=True)
class Band:
    cx: float
    cy: float
    half_width: float
    sigma_top: float
    sigma_bottom: float
    amplitude: float
    curvature: float  # vertical offset at the lane edge, in sigmas (positive: smile)
    tilt: float  # vertical offset across the lane, in sigmas
    smear: float  # weight of the tail above the band
    smear_len: float
    sharp: float


def _band_darkness(band: Band, h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """Darkness of one band in its own window; returns the window and its top-left corner."""
    reach_x = band.half_width * 1.6
    reach_up = 4 * band.sigma_top + 3 * band.smear_len * (band.smear > 0) + abs(band.curvature) * band.sigma_top
    reach_down = 4 * band.sigma_bottom + abs(band.curvature) * band.sigma_bottom
    x0, x1 = max(0, int(band.cx - reach_x)), min(w, int(np.ceil(band.cx + reach_x)) + 1)
    y0, y1 = max(0, int(band.cy - reach_up)), min(h, int(np.ceil(band.cy + reach_down)) + 1)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.float32), (y0, x0)
    xs = (np.arange(x0, x1, dtype=np.float32) - band.cx) / band.half_width
    edge = 1.0 + 0.15 * (smooth_noise(rng, 1, x1 - x0, cell=max(2.0, band.half_width / 3))[0] - 0.5)
    lateral = np.exp(-(np.abs(xs) ** band.sharp)) * edge
    offset = (band.curvature * xs**2 + band.tilt * xs) * band.sigma_top
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - band.cy - offset[None, :]
    sigma = np.where(ys < 0, band.sigma_top, band.sigma_bottom)
    vertical = np.exp(-0.5 * (ys / sigma) ** 2)
    if band.smear > 0:
        vertical += band.smear * np.exp(np.minimum(ys, 0) / band.smear_len) * (ys < 0)
    return (band.amplitude * vertical * lateral[None, :]).astype(np.float32), (y0, x0)


def render_strip(
    rng: np.random.Generator,
    h: int,
    w: int,
    style: BlotStyle,
    centres: np.ndarray,
    half_width: float,
    uniform: bool = False,
    n_rows: int | None = None,
) -> Panel:
    """One blot strip of ``h x w`` px with lanes at ``centres``.

    ``uniform=True`` renders a loading control: every lane from the same band template.
    """
    darkness = np.zeros((h, w), np.float32)
    objects: list[Obj] = []
    negatives: list[Negative] = []
    n_rows = n_rows or (1 if uniform or rng.random() < 0.7 else int(rng.integers(2, 4)))
    if n_rows == 1:
        rows = np.array([rng.uniform(0.38, 0.62) * h])
    else:
        rows = np.linspace(h * 0.25, h * 0.75, n_rows) + rng.uniform(-0.05, 0.05, n_rows) * h
    base_sigma = min(h / (n_rows * float(rng.uniform(5.0, 9.0))), half_width * float(rng.uniform(0.12, 0.35)))
    base_sigma = max(base_sigma, 0.8)
    template = _template(rng, base_sigma, style)
    pattern = _lane_pattern(rng, len(centres))
    band_boxes: list[tuple[int, int, int, int]] = []
    for r, cy in enumerate(rows):
        for i, cx in enumerate(centres):
            if uniform:
                params = template
                amp = template["amplitude"] * (1 + 0.03 * rng.standard_normal())
            else:
                params = _jitter(rng, template)
                amp = params["amplitude"] * pattern[i] * (1.0 if r == 0 else float(rng.uniform(0.3, 1.2)))
            if amp < 0.05:
                continue
            band = Band(
                cx=float(cx),
                cy=float(cy + (0 if uniform else rng.uniform(-0.04, 0.04) * base_sigma * 4)),
                half_width=half_width * (1.0 if uniform else float(rng.uniform(0.85, 1.1))),
                amplitude=float(amp),
                **{k: v for k, v in params.items() if k != "amplitude"},
            )
            window, (y0, x0) = _band_darkness(band, h, w, rng)
            if window.size == 0:
                continue
            darkness[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]] += window
            obj = _band_object(window, y0, x0, amp)
            if obj is not None:
                objects.append(obj)
                band_boxes.append(_centred_box(band, h, w))
    pairs = [(a, b) for a, b in itertools.pairwise(band_boxes) if _same_dims(a, b) and a[3] <= b[1]]
    if uniform and pairs:
        negatives.append(Negative("similar_bands", pairs[int(rng.integers(0, len(pairs)))]))
    if not uniform and rng.random() < 0.5:
        darkness += _nonspecific(rng, h, w, centres, half_width, base_sigma)
    image = _develop(rng, darkness, style)
    return Panel(image=image, family="blot", objects=objects, negatives=negatives)


def _template(rng: np.random.Generator, sigma: float, style: BlotStyle) -> dict[str, float]:
    asym = float(rng.uniform(0.7, 1.4))
    return {
        "sigma_top": sigma * asym,
        "sigma_bottom": sigma / asym,
        "amplitude": float(rng.uniform(0.6, 2.2)),
        "curvature": float(rng.uniform(-0.35, 0.6)),
        "tilt": float(rng.uniform(-0.2, 0.2)),
        "smear": float(style.smear * rng.uniform(0.0, 1.0)),
        "smear_len": sigma * float(rng.uniform(1.0, 4.0)),
        "sharp": style.sharp,
    }


def _jitter(rng: np.random.Generator, template: dict[str, float]) -> dict[str, float]:
    out = dict(template)
    for key in ("sigma_top", "sigma_bottom", "smear_len"):
        out[key] = template[key] * float(rng.uniform(0.8, 1.25))
    out["curvature"] = template["curvature"] + float(rng.uniform(-0.15, 0.15))
    out["tilt"] = template["tilt"] + float(rng.uniform(-0.1, 0.1))
    out["smear"] = template["smear"] * float(rng.uniform(0.5, 1.5))
    return out


def _lane_pattern(rng: np.random.Generator, n: int) -> np.ndarray:
    """Relative band strength per lane: treatment effects, a missing band, graded doses."""
    kind = rng.random()
    if kind < 0.3:
        pattern = rng.uniform(0.15, 1.2, n)
    elif kind < 0.55:
        pattern = np.linspace(float(rng.uniform(0.9, 1.3)), float(rng.uniform(0.05, 0.5)), n)
        pattern = pattern[::-1] if rng.random() < 0.5 else pattern
    elif kind < 0.8:
        pattern = np.where(np.arange(n) % 2 == 0, rng.uniform(0.8, 1.2, n), rng.uniform(0.1, 0.6, n))
    else:
        pattern = rng.uniform(0.7, 1.1, n)
        pattern[rng.integers(0, n)] = rng.uniform(0.0, 0.1)
    return pattern


def _band_object(window: np.ndarray, y0: int, x0: int, amp: float) -> Obj | None:
    core = window > 0.15 * amp
    if core.sum() < 12:
        return None
    ys, xs = np.nonzero(core)
    a, b, c, d = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    mask = cv2.dilate(core[a:c, b:d].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return Obj("band", (y0 + int(a), x0 + int(b), y0 + int(c), x0 + int(d)), mask)


def _centred_box(band: Band, h: int, w: int) -> tuple[int, int, int, int]:
    half_h = int(np.ceil(2.5 * max(band.sigma_top, band.sigma_bottom)))
    half_w = int(np.ceil(band.half_width * 1.1))
    cy, cx = round(band.cy), round(band.cx)
    return (max(0, cy - half_h), max(0, cx - half_w), min(h, cy + half_h), min(w, cx + half_w))


def _nonspecific(rng, h, w, centres, half_width, sigma) -> np.ndarray:
    """Faint extra bands and lane streaks."""
    extra = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy = float(rng.uniform(0.1, 0.9) * h)
        amp = float(rng.uniform(0.05, 0.25))
        for cx in centres:
            if rng.random() < 0.7:
                band = Band(
                    float(cx),
                    cy,
                    half_width,
                    sigma * 0.7,
                    sigma * 0.7,
                    amp * float(rng.uniform(0.5, 1.5)),
                    0.2,
                    0.0,
                    0.0,
                    sigma,
                    3.0,
                )
                window, (y0, x0) = _band_darkness(band, h, w, rng)
                extra[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]] += window
    return extra


def _develop(rng: np.random.Generator, darkness: np.ndarray, style: BlotStyle) -> np.ndarray:
    """Film response, uneven background, grain, tint: darkness → RGB uint8."""
    h, w = darkness.shape
    response = 1.0 - np.exp(-style.gain * darkness)
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    gy, gx = rng.uniform(-0.06, 0.06, 2)
    background = style.paper + gy * yy + gx * xx
    if style.blotch > 0:
        background = background + style.blotch * (smooth_noise(rng, h, w, cell=max(8.0, min(h, w) / 2)) - 0.5)
    level = background + (style.ink - background) * response
    noise = grain(rng, h, w, style.grain)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.7) * 1.6
    level = level + noise
    if rng.random() < 0.3:  # dust specks
        for _ in range(int(rng.integers(1, 6))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            cv2.circle(level, (x, y), int(rng.integers(1, 3)), float(style.ink + 0.3 * (style.paper - style.ink)), -1)
    rgb = level[:, :, None] * np.asarray(style.tint, np.float32)[None, None, :]
    return to_uint8(rgb * 255.0)


def render_gel(rng: np.random.Generator, h: int, w: int, n_lanes: int | None = None) -> Panel:
    """An agarose gel: wells, a ladder lane (sometimes both sides), 0–3 bands per sample lane.

    ``meta`` holds the lane centres and the ladder band rows (for lane and size labels).
    """
    inverted_display = rng.random() < 0.3
    style = random_style(rng, inverted=True)
    n_lanes = n_lanes or int(rng.integers(4, 13))
    centres, half_width = lane_layout(rng, w, n_lanes)
    darkness = np.zeros((h, w), np.float32)
    sigma = max(1.0, h * float(rng.uniform(0.008, 0.018)))
    ladder_lanes = [0] + ([n_lanes - 1] if rng.random() < 0.35 else [])
    ladder_y = np.sort(h * (0.12 + 0.8 * (1 - np.geomspace(1.0, 0.08, int(rng.integers(6, 12))))))
    ladder_amp = float(rng.uniform(0.4, 0.9))
    objects: list[Obj] = []
    negatives: list[Negative] = []
    ladder_boxes: list[tuple[int, int, int, int]] = []
    well_y = int(h * 0.06)
    for i, cx in enumerate(centres):
        if i in ladder_lanes:
            ys, amps = ladder_y, np.full(len(ladder_y), ladder_amp)
        else:
            ys = rng.uniform(0.2, 0.9, int(rng.integers(0, 4))) * h
            amps = rng.uniform(0.2, 1.5, len(ys))
        for cy, amp in zip(ys, amps, strict=True):
            band = Band(float(cx), float(cy), half_width, sigma, sigma, float(amp), 0.3, 0.0, 0.2, sigma * 2, 4.0)
            window, (y0, x0) = _band_darkness(band, h, w, rng)
            darkness[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]] += window
            obj = _band_object(window, y0, x0, float(amp))
            if obj is not None and i not in ladder_lanes:
                objects.append(obj)
            if i == ladder_lanes[0]:
                ladder_boxes.append(_centred_box(band, h, w))
        darkness[max(0, well_y - 2) : well_y + 2, int(cx - half_width) : int(cx + half_width)] += 0.6
    pair = _widest_disjoint_pair(ladder_boxes)
    if pair is not None:
        negatives.append(Negative("ladder", pair))
    if len(ladder_lanes) == 2:
        negatives.append(Negative("ladder"))
    image = _develop(rng, darkness, style)
    if inverted_display:
        image = 255 - image
    meta = {"centres": centres, "ladder_y": ladder_y, "ladder_lanes": ladder_lanes}
    return Panel(image=image, family="gel", objects=objects, negatives=negatives, meta=meta)


def _widest_disjoint_pair(boxes: list[tuple[int, int, int, int]]):
    """Two consecutive (top-to-bottom) boxes with the widest vertical gap, if they do not overlap."""
    boxes = sorted(boxes)
    best = None
    for a, b in itertools.pairwise(boxes):
        gap = b[0] - a[2]
        if gap > 0 and (best is None or gap > best[0]) and _same_dims(a, b):
            best = (gap, (a, b))
    return None if best is None else best[1]


def _same_dims(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return (a[2] - a[0], a[3] - a[1]) == (b[2] - b[0], b[3] - b[1])
