"""Small exact copies: an object of a few hundred pixels (a nucleus, a dot, a fibre segment) pasted
elsewhere in the figure, too small for keypoint clusters or the dense branch's patch grid.

An untouched copy repeats its source pixel for pixel (under a flip or quarter turn, whose resampling is
an index permutation). Every textured pixel gets a hash of the exact grey values of its neighbourhood,
read in the orientation of each of the eight flips/turns of the square; a source pixel ``p`` and its copy
``q = D p + t`` then share a hash. Hash collisions between unrelated pixels scatter over offsets, a copy
piles its pixels onto one ``(D, t)``; piles of at least a share of the image become candidates for the
same verification as every other branch. Only the figure's own pixel grid keeps copies exact, so the
branch stays off on downscaled working images.

JPEG after forging breaks exactness: source and copy sit at different phases of the 8 x 8 block grid and
carry independent compression errors. Those errors are fine-grained, so in a figure seen to be JPEG'd
(``jpeg_copy_candidates``) the neighbourhoods are hashed again on the low-passed figure, each value quantised
in steps of ``jpeg_step`` x the spread that two independent low-passed errors of the figure's own JPEG leave
between a copy and its source (measured on the figure: ``residual.signed_compression_error``). A copied pixel
then shares a cell with its source in a good share of cases (a second grid half a step apart found no more
copies on synthetic tiny copies, at twice the cost); hash cells
shared by a handful of pixels vote (each pair ``1 / cell size``) for their offset, and the strongest offset
peaks go to verification, which judges them against the same JPEG allowance as every other candidate.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

from models.matcher.config import SmallCopyParams
from models.matcher.dense import DIHEDRAL, _in_progression
from models.matcher.geometry import Candidate
from models.matcher.hashtable import RunTable
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage

RADIUS = 1  # neighbourhood (2 * RADIUS + 1)^2 hashed per pixel
LINEAR = DIHEDRAL  # linear part of each flip/turn on (x, y) column vectors, shared with the dense branch


def _hash(gray: np.ndarray, linear: np.ndarray, weights: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """uint64 hash of the neighbourhood values at offsets ``linear @ o`` (o on the square grid) of each pixel
    ``(ys, xs)``; the image edge repeats outwards."""
    padded = np.pad(gray, RADIUS, mode="edge")
    return _hash_compiled(padded, linear.astype(np.int64), weights, ys + RADIUS, xs + RADIUS)


def _hash_weights(n: int) -> np.ndarray:
    """Fixed odd uint64 weights of the ``n`` neighbourhood values (the same hash in every call)."""
    return np.random.default_rng(0).integers(1, 2**63, n, dtype=np.uint64) | np.uint64(1)


def _panel_of(layout: Layout, points: np.ndarray) -> int:
    """The panel most of ``points`` lie in (points off every panel count for panel 0)."""
    return int(np.bincount(np.maximum(layout.panel_at(points), 0)).argmax())


@numba.njit(cache=True, nogil=True)
def _hash_compiled(gray, linear, weights, ys, xs):
    r = RADIUS
    out = np.empty(len(ys), np.uint64)
    for i in range(len(ys)):
        key = np.uint64(0)
        k = 0
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                dx = linear[0, 0] * ox + linear[0, 1] * oy
                dy = linear[1, 0] * ox + linear[1, 1] * oy
                key += weights[k] * np.uint64(gray[ys[i] + dy, xs[i] + dx])
                k += 1
        out[i] = key
    return out


def small_copy_candidates(
    work: WorkingImage, layout: Layout, content: np.ndarray, params: SmallCopyParams, min_offset: float
) -> list[Candidate]:
    """Candidate transforms of exact small copies (see the module docstring)."""
    if not params.enabled or work.scale != 1.0:
        return []
    gray = np.clip(np.round(work.gray), 0, 255).astype(np.uint8)
    g = gray.astype(np.float32)
    n = 2 * RADIUS + 1
    mean = cv2.boxFilter(g, cv2.CV_32F, (n, n))
    std = np.sqrt(np.maximum(cv2.boxFilter(g * g, cv2.CV_32F, (n, n)) - mean * mean, 0))
    usable = content & (std >= params.min_std) & (gray > 0) & (gray < 255)
    usable = cv2.erode(usable.astype(np.uint8), np.ones((n, n), np.uint8)).astype(bool)
    ys, xs = (axis.astype(np.int64) for axis in np.nonzero(usable))
    if len(ys) < params.min_pixels:
        return []
    weights = _hash_weights(n * n)
    base = _hash(gray, np.eye(2, dtype=np.int64), weights, ys, xs)
    order = np.argsort(base, kind="stable")
    table = RunTable(base[order])
    min_pixels = max(params.min_pixels, params.min_area * work.area)
    found = []
    for name, lin in LINEAR.items():
        linear = np.array(lin, np.int64)
        query = _hash(gray, linear, weights, ys, xs) if name != "identity" else base
        first, count = table.lookup(query)
        # a hash shared by many pixels is a flat or repeated texture, not a copy
        q_idx = np.flatnonzero((count > 0) & (count <= params.max_copies + 1))
        if len(q_idx) == 0:
            continue
        starts, sizes = first[q_idx], count[q_idx]
        q_rep = np.repeat(q_idx, sizes)
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        p_idx = order[np.repeat(starts, sizes) + within]
        src = np.stack([xs[p_idx], ys[p_idx]], axis=1)
        dst = np.stack([xs[q_rep], ys[q_rep]], axis=1)
        shift = dst - src @ linear.T
        far = np.hypot(*(dst - src).T) >= min_offset
        if name == "identity":
            far &= (shift[:, 0] > 0) | ((shift[:, 0] == 0) & (shift[:, 1] > 0))  # each pair once
        src, dst, shift = src[far], dst[far], shift[far]
        if len(shift) == 0:
            continue
        keys, inverse, votes = np.unique(shift, axis=0, return_inverse=True, return_counts=True)
        for k in np.flatnonzero(votes >= min_pixels):
            members = inverse.ravel() == k
            found.append((int(votes[k]), linear, keys[k], src[members], dst[members]))
    found.sort(key=lambda item: -item[0])
    candidates = []
    for votes, linear, shift, src, dst in found[: params.max_candidates]:
        affine = np.hstack([linear.astype(np.float64), shift.astype(np.float64)[:, None]])
        candidates.append(
            Candidate(
                affine=affine,
                src_pts=src.astype(np.float64),
                dst_pts=dst.astype(np.float64),
                origin="exact",
                support=votes,
                src_panel=_panel_of(layout, src),
                dst_panel=_panel_of(layout, dst),
            )
        )
    return candidates


def jpeg_copy_candidates(
    work: WorkingImage,
    layout: Layout,
    content: np.ndarray,
    params: SmallCopyParams,
    min_offset: float,
    compression: np.ndarray | None,
) -> list[Candidate]:
    """Candidate transforms of small copies in a figure saved as JPEG after forging (see the module docstring).

    ``compression``: the signed error field of the figure's own JPEG (``VerifyContext.signed_compression``;
    None when no JPEG was seen, and then nothing is searched here).
    """
    if not params.enabled or params.jpeg_step <= 0 or compression is None or work.scale != 1.0:
        return []
    sigma = params.jpeg_sigma
    low = cv2.GaussianBlur(work.gray, (0, 0), sigma)
    error = cv2.GaussianBlur(compression, (0, 0), sigma)
    inside = cv2.erode(content.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    if not inside.any():
        return []
    # two independent low-passed JPEG errors between a copy and its source
    step = max(params.jpeg_step * float(np.sqrt(2.0) * error[inside].std()), 1.0)
    n = 2 * RADIUS + 1
    kernel = np.ones((n, n), np.uint8)
    span = cv2.dilate(low, kernel) - cv2.erode(low, kernel)
    usable = cv2.erode((content & (span >= step)).astype(np.uint8), kernel).astype(bool)
    usable[:RADIUS], usable[-RADIUS:], usable[:, :RADIUS], usable[:, -RADIUS:] = False, False, False, False
    ys, xs = (axis.astype(np.int64) for axis in np.nonzero(usable))
    if len(ys) < 2:
        return []
    h, w = work.shape
    weights = _hash_weights(n * n)
    cells = np.clip(np.floor(low / step), 0, 255).astype(np.uint8)
    base = _hash(cells, np.eye(2, dtype=np.int64), weights, ys, xs)
    order = np.argsort(base, kind="stable")
    table = RunTable(base[order])
    min_votes = params.min_area * work.area
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.int64)
    found = []
    for name, lin in LINEAR.items():
        linear = np.array(lin, np.int64)
        involution = bool(np.array_equal(linear @ linear, np.eye(2, dtype=np.int64)))
        moved = corners @ linear.T  # offsets t = q - D p span [-max(D p), side - 1 - min(D p)] on each axis
        low_t = -moved.max(axis=0)
        size = np.array([w, h]) - 1 - moved.min(axis=0) - low_t + 1
        acc = np.zeros((int(size[1]), int(size[0])), np.float32)
        first, count = table.lookup(_hash(cells, linear, weights, ys, xs) if name != "identity" else base)
        # (a cell shared by more than max_copies + 1 pixels is smooth or repeated texture, as for exact hashes)
        max_cell = params.max_copies + 1
        _accumulate(first, count, order, xs, ys, linear, involution, float(min_offset), acc, low_t, max_cell)
        # peaks of the votes summed over 3 x 3 offsets (neighbouring pixels of smooth content match one off)
        smoothed = cv2.boxFilter(acc, cv2.CV_32F, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        targets = []
        for _ in range(params.max_candidates):
            k = int(np.argmax(smoothed))
            py, px = divmod(k, smoothed.shape[1])
            mass = float(smoothed[py, px])
            if mass < min_votes:
                break
            y0, x0 = max(py - 1, 0), max(px - 1, 0)
            block = acc[y0 : py + 2, x0 : px + 2]
            by, bx = divmod(int(np.argmax(block)), block.shape[1])  # the copy's own whole-pixel offset
            targets.append((mass, int(x0 + bx + low_t[0]), int(y0 + by + low_t[1])))
            smoothed[max(py - 2, 0) : py + 3, max(px - 2, 0) : px + 3] = 0
        if not targets:
            continue
        offsets = np.array([(tx, ty) for _, tx, ty in targets], np.int64)
        kept = ~_in_progression(offsets.astype(np.float64), tol=2.0)  # lanes, grids: a repeated layout
        if not kept.any():
            continue
        members = _members(first, count, order, xs, ys, linear, involution, float(min_offset), offsets[kept], max_cell)
        chosen = [target for target, keep in zip(targets, kept, strict=True) if keep]
        for (mass, tx, ty), (src, dst) in zip(chosen, members, strict=True):
            if len(src):
                found.append((mass, linear, np.array([tx, ty], np.float64), src, dst))
    found.sort(key=lambda item: -item[0])
    candidates = []
    for mass, linear, shift, src, dst in found:
        if any(np.array_equal(shift, c.affine[:, 2]) for c in candidates):
            continue  # a nearly symmetric object votes under two flips/turns for one place: the stronger goes
        candidates.append(
            Candidate(
                affine=np.hstack([linear.astype(np.float64), shift[:, None]]),
                src_pts=src,
                dst_pts=dst,
                origin="exact",  # the small-copies branch (pixel-level agreement up to the figure's own JPEG)
                support=round(mass),
                src_panel=_panel_of(layout, src),
                dst_panel=_panel_of(layout, dst),
                extra={"search": "jpeg"},  # verification also asks that no other place agrees about as well
            )
        )
        if len(candidates) == params.max_candidates:
            break
    return candidates


@numba.njit(cache=True, nogil=True)
def _offset_of(p, q, xs, ys, linear, involution):
    """``t = q - D p`` of the pair ``p -> q``; for an involution the larger of it and its reverse ``-D t``
    (the pair is found from both ends: one direction, one peak)."""
    tx = xs[q] - (linear[0, 0] * xs[p] + linear[0, 1] * ys[p])
    ty = ys[q] - (linear[1, 0] * xs[p] + linear[1, 1] * ys[p])
    if involution:
        rx = -(linear[0, 0] * tx + linear[0, 1] * ty)
        ry = -(linear[1, 0] * tx + linear[1, 1] * ty)
        if rx > tx or (rx == tx and ry > ty):
            return rx, ry, True
    return tx, ty, False


@numba.njit(cache=True, nogil=True)
def _accumulate(first, count, order, xs, ys, linear, involution, min_offset, acc, low, max_cell):
    """Each query pixel's cell mates vote ``1 / cell size`` for their offset (``acc[ty - low_y, tx - low_x]``)."""
    for q in range(len(first)):
        c = count[q]
        if c < 1 or c > max_cell:
            continue
        weight = np.float32(1.0 / c)
        for j in range(c):
            p = order[first[q] + j]
            dx, dy = xs[q] - xs[p], ys[q] - ys[p]
            if dx * dx + dy * dy < min_offset * min_offset:
                continue  # the pixel itself and its neighbours: self-similarity
            tx, ty, _ = _offset_of(p, q, xs, ys, linear, involution)
            acc[ty - low[1], tx - low[0]] += weight


def _members(first, count, order, xs, ys, linear, involution, min_offset, targets, max_cell) -> list:
    """Per target offset ``(tx, ty)``: (source, copy) points of the pairs voting exactly for it."""
    which, pairs = _collect(first, count, order, xs, ys, linear, involution, min_offset, targets, max_cell)
    members = []
    for k in range(len(targets)):
        chosen = np.unique(pairs[which == k], axis=0)
        members.append((chosen[:, :2].astype(np.float64), chosen[:, 2:].astype(np.float64)))
    return members


@numba.njit(cache=True, nogil=True)
def _collect(first, count, order, xs, ys, linear, involution, min_offset, targets, max_cell):
    """(target index, (x_src, y_src, x_copy, y_copy)) of every pair whose offset is one of ``targets``."""
    size = 64
    which = np.empty(size, np.int64)
    pairs = np.empty((size, 4), np.int64)
    n = 0
    for q in range(len(first)):
        c = count[q]
        if c < 1 or c > max_cell:
            continue
        for j in range(c):
            p = order[first[q] + j]
            dx, dy = xs[q] - xs[p], ys[q] - ys[p]
            if dx * dx + dy * dy < min_offset * min_offset:
                continue
            ox, oy, swapped = _offset_of(p, q, xs, ys, linear, involution)
            for k in range(len(targets)):
                if ox == targets[k, 0] and oy == targets[k, 1]:
                    if n == size:
                        size *= 2
                        grown_w = np.empty(size, np.int64)
                        grown_p = np.empty((size, 4), np.int64)
                        grown_w[:n], grown_p[:n] = which[:n], pairs[:n]
                        which, pairs = grown_w, grown_p
                    a, b = (q, p) if swapped else (p, q)
                    which[n] = k
                    pairs[n, 0], pairs[n, 1], pairs[n, 2], pairs[n, 3] = xs[a], ys[a], xs[b], ys[b]
                    n += 1
    return which[:n].copy(), pairs[:n].copy()
