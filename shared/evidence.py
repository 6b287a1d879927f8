"""Repetition evidence at a figure's own resolution: which pixels repeat, near-exactly, elsewhere?

A copy-move forgery leaves two regions whose pixels agree far better than any two natural regions
do. Networks that look at a figure through a 128-512 px view lose that exactness, so it is measured
here, once per figure, at the figure's own resolution (figures above ``max_pixels`` are
area-downscaled first, which bounds time and memory on 16 MP figures), and handed to the networks as
extra input channels (``CHANNELS``):

* ``repeat``: how exactly the ``patch`` x ``patch`` neighbourhood of each pixel reappears somewhere
  else, under any of the eight flips/rotations of the square: ``-log10(r + 1e-3) / 3`` of the
  residual ratio ``r`` of the best partner patch: its residual over what the image's own noise, plus
  ``shape_tolerance`` of the patch's energy (re-compression, resampling), would leave between two
  different patches (an exact copy: 1; a JPEG'd copy: ~0.2-0.4; look-alikes with their own noise: 0).
* ``coherence``: the share of the pixel's four neighbours (``patch / 4`` px away) whose best partners
  lie where the same flip/rotation and shift put them: a copied region moves as a whole, chance
  look-alikes scatter.

How (classical block matching by sorting, after Fridrich et al. 2003): every pixel's patch is
described by its low-frequency DCT coefficients (all (u, v) up to 4), normalised by the patch's
contrast. Under the eight symmetries of the square these coefficients only change sign and swap
(u, v), so each descriptor is put in a canonical orientation and one sort of its leading coefficients
brings candidate partners next to each other, whatever their distance and orientation; each pixel is
compared with its next ``neighbours`` in that order. Patches without texture (flat fills) or mostly
white (text and line art on the page: labels, letters, tick marks repeat by nature) carry no
evidence; partners closer than ``min_offset`` x ``patch`` px are neighbours, not copies. Values are
uint8 (x 255), ``(H, W, len(CHANNELS))``, at the image's size. The per-patch loops (canonical
orientation, partner search, neighbour agreement) are compiled with numba (``cache=True``: compiled once
per machine, then loaded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numba
import numpy as np

from shared.images import resize

CHANNELS = ("repeat", "coherence")
RESIDUAL_FLOOR = 1e-3
# DCT frequencies (u: vertical, v: horizontal) that describe a patch; DC is left out (brightness).
FREQUENCIES = tuple((u, v) for u in range(5) for v in range(5) if u or v)
KEY_TERMS = 6  # leading (lowest-frequency) canonical coefficients that make the sort key
# The symmetries of the square as (transpose first?, flip rows?, flip columns?).
SYMMETRIES = {
    "identity": (False, False, False),
    "flip_h": (False, False, True),
    "flip_v": (False, True, False),
    "rot180": (False, True, True),
    "transpose": (True, False, False),
    "rot90": (True, True, False),
    "rot270": (True, False, True),
    "transverse": (True, True, True),
}


@dataclass(frozen=True)
class EvidenceSpec:
    """How evidence is computed (``evidence:`` in params.yaml; stored in every segmenter checkpoint)."""

    patch: int = 8  # patch side, px at the working resolution
    max_pixels: int = 1_500_000  # working resolution: larger figures are area-downscaled to this
    neighbours: int = 4  # candidates per pixel in sorted order
    key_bins: float = 0.08  # width of the sort key's quantisation (share of the patch contrast)
    min_offset: float = 1.5  # partners closer than this many patch sides are neighbours, not copies
    min_contrast: float = 1.0  # grey levels: RMS contrast (mean removed) a patch needs to carry evidence
    noise_floor: float = 0.5  # grey levels: the least noise assumed (8-bit quantisation)
    paper_level: int = 250  # grey level from which a pixel is paper (and up to 255 - this, pure ink)
    max_paper_share: float = 0.4  # patches with more paper (+ ink beside paper) are text/line art: no evidence
    shape_tolerance: float = 0.1  # share of a patch's energy a copy may lose (JPEG, resampling) on top of the noise
    symmetries: tuple[str, ...] = tuple(SYMMETRIES)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.symmetries) - set(SYMMETRIES))
        if unknown:
            raise ValueError(f"evidence symmetries: unknown {unknown} (known: {list(SYMMETRIES)})")
        if self.patch < 4 or self.neighbours < 1 or self.key_bins <= 0:
            raise ValueError("evidence: need patch >= 4, neighbours >= 1 and key_bins > 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EvidenceSpec:
        """From params.yaml or a checkpoint; unknown keys raise (a typo never passes silently)."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KeyError(f"evidence: unknown key(s) {unknown} (known: {sorted(known)})")
        if "symmetries" in data:
            data["symmetries"] = tuple(data["symmetries"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def _cos_basis(side: int, k: int) -> np.ndarray:
    i = np.arange(side)
    basis = np.cos(np.pi * (2 * i + 1) * k / (2 * side))
    return (basis / np.linalg.norm(basis)).astype(np.float32)


def symmetry_action(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(order, sign)`` with ``coefficients(T(patch)) = sign * coefficients(patch)[order]``."""
    transpose, flip_rows, flip_cols = SYMMETRIES[name]
    order, sign = [], []
    for u, v in FREQUENCIES:
        su, sv = (v, u) if transpose else (u, v)  # the coefficient of the source patch that lands here
        order.append(FREQUENCIES.index((su, sv)))
        sign.append((-1) ** (u * flip_rows + v * flip_cols))
    return np.array(order), np.array(sign, np.float32)


def symmetry_matrix(name: str) -> np.ndarray:
    """2x2 matrix mapping a (dy, dx) displacement inside a patch to its place after the symmetry."""
    transpose, flip_rows, flip_cols = SYMMETRIES[name]
    matrix = np.array([[0, 1], [1, 0]], np.float32) if transpose else np.eye(2, dtype=np.float32)
    return np.diag([-1.0 if flip_rows else 1.0, -1.0 if flip_cols else 1.0]).astype(np.float32) @ matrix


def _work_grey(image: np.ndarray, max_pixels: int) -> np.ndarray:
    grey = image.astype(np.float32).mean(axis=2) if image.ndim == 3 else image.astype(np.float32)
    height, width = grey.shape
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    return resize(grey, (max(1, round(height * scale)), max(1, round(width * scale))))


def _dct_planes(grey: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch origin: raw DCT coefficients as planes ``(F, h, w)`` and the patch norm (mean removed) ``(h, w)``."""
    h, w = grey.shape[0] - side + 1, grey.shape[1] - side + 1
    mean = cv2.boxFilter(grey, -1, (side, side), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)
    square = cv2.boxFilter(grey * grey, -1, (side, side), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)
    norm = np.sqrt(np.clip(square - mean * mean, 0, None))[:h, :w] * side  # = ||patch - mean||
    bases = {k: _cos_basis(side, k) for k in range(5)}
    planes = np.empty((len(FREQUENCIES), h, w), np.float32)  # one contiguous plane per frequency
    for index, (u, v) in enumerate(FREQUENCIES):
        filtered = cv2.sepFilter2D(
            grey, -1, bases[v], bases[u], anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
        )  # correlation: sum over the patch whose top-left corner is at the output pixel
        planes[index] = filtered[:h, :w]
    return planes, norm


def describe(grey: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch origin ``(y, x)``: DCT coefficients ``(h, w, F)`` normalised by contrast, and contrast ``(h, w)``.

    ``h, w`` = image size - ``side`` + 1 (patches wholly inside the image).
    """
    planes, norm = _dct_planes(grey, side)
    return (planes / np.maximum(norm, 1e-6)).transpose(1, 2, 0), norm / side


def canonical(coefficients: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each descriptor in the orientation its symmetry class agrees on, and which symmetry took it there.

    The representative has ``|c01| >= |c10|``, ``c01 >= 0`` and ``c10 >= 0`` (only the symmetries in
    ``names`` are used), so a patch and any flipped/rotated copy of it share one canonical descriptor.
    """
    i01, i10 = FREQUENCIES.index((0, 1)), FREQUENCIES.index((1, 0))
    # the wanted (transpose, flip rows, flip columns) as a 3-bit code; one lookup gives the symmetry
    known = {SYMMETRIES[n]: i for i, n in enumerate(names)}
    lookup = np.array([known.get((bool(c & 4), bool(c & 2), bool(c & 1)), -1) for c in range(8)], np.int64)
    # transposing first makes (u, v) -> (v, u); then c01 flips with columns and c10 with rows
    swapped = np.array([FREQUENCIES.index((v, u)) for u, v in FREQUENCIES], np.int64)
    odd_u = np.array([(-1.0) ** u for u, _ in FREQUENCIES], np.float32)
    odd_v = np.array([(-1.0) ** v for _, v in FREQUENCIES], np.float32)
    signs = np.stack(
        [(odd_u if c & 2 else 1.0) * (odd_v if c & 1 else 1.0) * np.ones(len(FREQUENCIES)) for c in range(8)]
    ).astype(coefficients.dtype)
    return _canonical_rows(np.ascontiguousarray(coefficients), i01, i10, lookup, swapped, signs)


def compute_evidence(image: np.ndarray, spec: EvidenceSpec | None = None) -> np.ndarray:
    """``(H, W, len(CHANNELS))`` uint8 repetition evidence of one uint8 image (grey or RGB)."""
    spec = spec or EvidenceSpec()
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"evidence: expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    native = image.shape[:2]
    grey = _work_grey(image, spec.max_pixels)
    side = spec.patch
    if min(grey.shape) < 2 * side:
        return np.zeros((*native, len(CHANNELS)), np.uint8)
    planes, norm = _dct_planes(grey, side)
    contrast = norm / side
    h, w = contrast.shape
    page = _page_share(grey, spec)[:h, :w]
    textured = np.flatnonzero((contrast.ravel() > spec.min_contrast) & (page.ravel() <= spec.max_paper_share))
    strength = np.zeros(h * w, np.float32)
    coherence = np.zeros(h * w, np.float32)
    if len(textured) > 1:
        sigma = max(spec.noise_floor, noise_sigma(grey, contrast > spec.min_contrast))
        norms = contrast.ravel()[textured] * side / sigma  # patch energy in units of the noise
        desc = np.ascontiguousarray(planes.reshape(len(FREQUENCIES), -1)[:, textured].T)  # textured patches only
        desc /= np.maximum(norm.ravel()[textured], 1e-6)[:, None]
        s, c = _match(desc, norms, textured, (h, w), spec)
        strength[textured], coherence[textured] = s, c
    maps = np.zeros((*grey.shape, len(CHANNELS)), np.float32)
    for channel, values in enumerate((strength, coherence)):
        maps[:, :, channel] = _splat(values.reshape(h, w), side, grey.shape)
    return np.round(np.clip(resize(maps, native), 0, 1) * 255).astype(np.uint8).reshape(*native, len(CHANNELS))


def _page_share(grey: np.ndarray, spec: EvidenceSpec) -> np.ndarray:
    """Per patch origin: share of page pixels (paper white, or pure-black ink where paper is present too).

    Text, tick marks and line art are black (or coloured) ink on white paper; their patches hold mostly
    the two extremes. Dark microscopy backgrounds hold black but no paper, so they are not page.
    """
    box = (spec.patch, spec.patch)

    def share(mask: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(mask.astype(np.float32), -1, box, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)

    paper = share(grey >= spec.paper_level)
    ink = share(grey <= 255 - spec.paper_level)
    return np.where(paper > 0, paper + ink, 0.0)


def noise_sigma(grey: np.ndarray, where: np.ndarray) -> float:
    """Robust noise level (grey levels) of an image: median response of a Laplacian-difference kernel
    that cancels planes (Immerkær 1996), over the patches that carry any contrast (flat paper excluded)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT))[: where.shape[0], : where.shape[1]]
    values = response[where]
    return float(1.4826 * np.median(values) / 6.0) if values.size else 0.0


def _match(desc: np.ndarray, norms: np.ndarray, index: np.ndarray, grid: tuple[int, int], spec: EvidenceSpec) -> tuple:
    """Best-partner strength and coherence of the patches with descriptors ``desc`` (flat positions ``index``).

    ``norms``: each patch's energy (mean removed) in units of the image noise. The residual of a pair is
    judged against what independent noise alone would leave, ``2 x F x sigma²`` over the ``F`` coefficients,
    plus ``shape_tolerance`` of the pair's energy (what re-compression or resampling of a copy costs), so
    a copy (ratio near 0) stands out while look-alikes with their own noise or shape (ratio near 1 or
    above) do not, whatever their contrast. The descriptors are unit vectors; a gain between copy and
    source (contrast change) is forgiven by comparing shapes scaled by the geometric mean of the energies.
    """
    names = spec.symmetries
    canon, to_canon = canonical(desc, names)
    order = np.argsort(_sort_key(canon, spec.key_bins))
    canon, to_canon, index, norms = canon[order], to_canon[order], index[order], norms[order]
    noise = 2.0 * canon.shape[1]
    ys, xs = (v.astype(np.int32) for v in np.divmod(index, grid[1]))
    best, partner, symmetry = _best_partners(
        canon,
        norms.astype(np.float32),
        ys,
        xs,
        to_canon,
        _composition(names),
        spec.neighbours,
        np.float32(noise),
        np.float32(spec.shape_tolerance),
        spec.min_offset * spec.patch,
    )
    found = np.isfinite(best)
    residual = np.where(found, best, 1.0)  # residual / what independent noise would leave
    strength = np.clip(-np.log10(residual + RESIDUAL_FLOOR) / 3.0, 0.0, 1.0).astype(np.float32)
    coherence = _coherence(ys, xs, grid, partner, symmetry, found, spec)
    back = np.empty_like(order)  # to the caller's order
    back[order] = np.arange(len(order))
    return strength[back], coherence[back]


def _sort_key(canon: np.ndarray, bins: float) -> np.ndarray:
    """One int64 per descriptor: its first ``KEY_TERMS`` canonical coefficients, quantised, as digits."""
    levels = math.ceil(2.0 / bins) + 1
    digits = np.clip(np.floor((canon[:, :KEY_TERMS] + 1.0) / bins), 0, levels - 1).astype(np.int64)
    key = np.zeros(len(canon), np.int64)
    for column in range(digits.shape[1]):
        key = key * levels + digits[:, column]
    return key


def _composition(names: tuple[str, ...]) -> np.ndarray:
    """``table[i, j]``: index of the symmetry ``S_j⁻¹ S_i`` (apply ``i``, then undo ``j``)."""
    matrices = [symmetry_matrix(n) for n in names]
    table = np.zeros((len(names), len(names)), np.int64)
    for i, mi in enumerate(matrices):
        for j, mj in enumerate(matrices):
            product = np.linalg.inv(mj) @ mi
            table[i, j] = next((k for k, mk in enumerate(matrices) if np.allclose(mk, product)), 0)
    return table


def _coherence(ys, xs, grid, partner, symmetry, found, spec: EvidenceSpec) -> np.ndarray:
    """Share of the 4 neighbours (``patch / 4`` px away) whose partner sits where the same symmetry puts it."""
    matrices = np.stack([symmetry_matrix(name) for name in spec.symmetries]).astype(np.int64)
    return _agreeing_neighbours(ys, xs, grid[0], grid[1], partner, symmetry, found, matrices, max(1, spec.patch // 4))


def _splat(values: np.ndarray, side: int, shape: tuple[int, int]) -> np.ndarray:
    """Patch-origin values to a ``shape`` map: each pixel takes the maximum over the patches covering it."""
    padded = np.zeros(shape, np.float32)
    padded[: values.shape[0], : values.shape[1]] = values
    kernel = np.ones((side, side), np.uint8)
    return cv2.dilate(padded, kernel, anchor=(side - 1, side - 1), borderType=cv2.BORDER_CONSTANT, borderValue=0)


# ---- compiled inner loops (numba): the same arithmetic as whole-array numpy, without its temporaries ----


@numba.njit(cache=True, nogil=True)
def _canonical_rows(coefficients, i01, i10, lookup, swapped, signs):
    """Per row: the 3-bit (transpose, flip rows, flip columns) code, its symmetry and the moved coefficients."""
    n, f = coefficients.shape
    out = np.empty_like(coefficients)
    symmetry = np.zeros(n, np.int64)
    for r in range(n):
        c01, c10 = coefficients[r, i01], coefficients[r, i10]
        swap = abs(c10) > abs(c01)
        first, second = (c10, c01) if swap else (c01, c10)
        code = 4 * swap + 2 * (second < 0) + (first < 0)
        if lookup[code] < 0:  # a symmetry outside the allowed ones: the descriptor stays as it is
            code = 0
        symmetry[r] = max(lookup[code], 0)
        for c in range(f):
            source = swapped[c] if code >= 4 else c
            out[r, c] = coefficients[r, source] * signs[code, c]
    return out, symmetry


@numba.njit(cache=True, nogil=True)
def _best_partners(canon, norms, ys, xs, to_canon, compose, neighbours, noise, tolerance, min_offset):
    """Best partner among the ``neighbours`` next descriptors in sorted order, from both sides of each pair.

    Per step, all first sides are updated before all second sides (strict ``<``), as slices would.
    """
    n, f = canon.shape
    best = np.full(n, np.inf, np.float32)
    partner = np.full(n, -1, np.int64)
    symmetry = np.full(n, -1, np.int64)
    value = np.empty(n, np.float32)
    for step in range(1, neighbours + 1):
        pairs = n - step
        for k in range(pairs):
            j = k + step
            if max(abs(ys[k] - ys[j]), abs(xs[k] - xs[j])) < min_offset:
                value[k] = np.inf
                continue
            distance = np.float32(0.0)
            for c in range(f):
                d = canon[k, c] - canon[j, c]
                distance += d * d
            energy = norms[k] * norms[j]
            value[k] = distance * energy / (noise + tolerance * energy)
        for k in range(pairs):
            if value[k] < best[k]:
                best[k], partner[k] = value[k], k + step
                symmetry[k] = compose[to_canon[k], to_canon[k + step]]
        for k in range(pairs):
            j = k + step
            if value[k] < best[j]:
                best[j], partner[j] = value[k], k
                symmetry[j] = compose[to_canon[j], to_canon[k]]
    return best, partner, symmetry


@numba.njit(cache=True, nogil=True)
def _agreeing_neighbours(ys, xs, h, w, partner, symmetry, found, matrices, gap):
    """Share of the 4 neighbours ``gap`` away whose partner sits where the same symmetry puts it."""
    n = len(ys)
    slot = np.full(h * w, -1, np.int64)
    for i in range(n):
        slot[ys[i] * w + xs[i]] = i
    agree = np.zeros(n, np.float32)
    for i in range(n):
        s = symmetry[i]
        if not found[i] or s < 0:
            continue
        for dy, dx in ((-gap, 0), (gap, 0), (0, -gap), (0, gap)):
            ny, nx = ys[i] + dy, xs[i] + dx
            if ny < 0 or ny >= h or nx < 0 or nx >= w:
                continue
            o = slot[ny * w + nx]
            if o < 0 or not found[o] or symmetry[o] != s:
                continue
            py = ys[partner[i]] + matrices[s, 0, 0] * dy + matrices[s, 0, 1] * dx
            px = xs[partner[i]] + matrices[s, 1, 0] * dy + matrices[s, 1, 1] * dx
            if max(abs(py - ys[partner[o]]), abs(px - xs[partner[o]])) <= 1:  # integer grid: the same as <= 1.5
                agree[i] += 1.0
    return agree / np.float32(4.0)
