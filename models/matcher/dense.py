"""Dense branch: copies of low-texture regions (blot bands, smooth tissue) that give too few keypoints.

Every patch on a grid gets a small contrast-normalised descriptor: its low-frequency DCT coefficients
(DC removed, divided by the patch's standard deviation, so brightness and contrast changes cancel).
The eight flips and quarter turns of a square patch act on these coefficients as fixed signed
permutations, so a copy that was flipped or turned by 90° is found by querying the transformed
descriptors against the untransformed ones (scipy's cKDTree, radius-bounded). Each match ``p -> q``
under the transform ``D`` votes for the translation ``t = q - D p``; a real copy gives many votes to one
``(D, t)`` while accidental matches scatter. Peaks of these offset histograms become candidates for
the same verification as the keypoint branch.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numba
import numpy as np

from models.matcher.config import DenseParams
from models.matcher.geometry import Candidate
from models.matcher.hashtable import RunTable, run_of
from models.matcher.keypoints import DISTANCE_FLOOR
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage

# Linear part of each transform acting on (x, y) column vectors (image axes: x right, y down).
DIHEDRAL = {
    "identity": ((1, 0), (0, 1)),
    "flip_h": ((-1, 0), (0, 1)),
    "flip_v": ((1, 0), (0, -1)),
    "rot180": ((-1, 0), (0, -1)),
    "rot90": ((0, -1), (1, 0)),
    "rot270": ((0, 1), (-1, 0)),
    "transpose": ((0, 1), (1, 0)),
    "transverse": ((0, -1), (-1, 0)),
}
MAX_FREQUENCY = 3  # DCT coefficients (u, v) with 1 <= u + v <= 3: nine numbers per patch
EXACT_SHARE = 0.25  # a match's vote falls off as exp(-(distance / (EXACT_SHARE * radius))^2)
# descriptor distance of a copy whose pixels each carry independent errors of mean |e| on both sides: the
# difference has std sqrt(2) * sqrt(pi / 2) |e| = 1.77 |e| per pixel, hence per orthonormal DCT coefficient; over
# the nine coefficients (divided by patch std x side) the distance is about 3 x that
COPY_SPREAD = 3.0 * 1.77
KEY_DIMS = 5  # the five coefficients with u + v <= 2 form the hash key (a set closed under the transforms)
MAX_BUCKET = 16  # larger hash buckets hold featureless or repeated texture and are skipped


@lru_cache(maxsize=8)
def dct_basis(n: int) -> np.ndarray:
    """``(k, n, n)`` orthonormal 2-D DCT-II basis images indexed ``[y, x]``, low frequencies without DC."""
    i = np.arange(n)
    phi = [np.cos(np.pi * (2 * i + 1) * u / (2 * n)) for u in range(MAX_FREQUENCY + 1)]
    images = []
    for total in range(1, MAX_FREQUENCY + 1):
        for u in range(total + 1):
            v = total - u
            image = np.outer(phi[v], phi[u])  # rows follow y (frequency v), columns x (frequency u)
            images.append(image / np.linalg.norm(image))
    return np.stack(images)


@lru_cache(maxsize=64)
def feature_transform(name: str, n: int) -> np.ndarray:
    """Matrix ``M`` with ``features(D · patch) = M @ features(patch)`` for the dihedral transform ``name``."""
    basis = dct_basis(n)
    d = np.array(DIHEDRAL[name])
    r = n // 2
    ey, ex = np.mgrid[-r : r + 1, -r : r + 1]
    mx = d[0, 0] * ex + d[0, 1] * ey  # b(D ε): look each basis image up at the transformed offset
    my = d[1, 0] * ex + d[1, 1] * ey
    moved = basis[:, my + r, mx + r]
    return np.einsum("kyx,lyx->kl", moved, basis)


def patch_features(gray: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ``(features (h, w, k), std (h, w))`` of the ``n x n`` patch centred there."""
    basis = dct_basis(n)
    feats = np.stack([cv2.filter2D(gray, cv2.CV_32F, b, borderType=cv2.BORDER_REFLECT) for b in basis], axis=2)
    mean = cv2.boxFilter(gray, cv2.CV_32F, (n, n), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(gray * gray, cv2.CV_32F, (n, n), borderType=cv2.BORDER_REFLECT)
    std = np.sqrt(np.maximum(sq - mean * mean, 0))
    feats /= (std * n + 1e-6)[:, :, None]
    return feats, std


def dense_candidates(
    work: WorkingImage,
    layout: Layout,
    content: np.ndarray,
    params: DenseParams,
    min_offset_px: float,
    copy_error: float = 0.0,
) -> list[Candidate]:
    """Candidate pairs from offset-consistent patch matches.

    ``copy_error``: mean |error| (grey levels) the figure's own compression leaves on every pixel (0 when it
    was not saved as JPEG). A JPEG'd copy differs from its source by two such errors, which moves its
    descriptor by about ``COPY_SPREAD * copy_error / (patch std * patch side)``; a match that close still
    votes as a near-exact one.
    """
    h, w = work.shape
    ds = min(1.0, params.scale, params.max_side / max(h, w))
    size = (max(1, round(w * ds)), max(1, round(h * ds)))
    gray = cv2.resize(work.gray, size, interpolation=cv2.INTER_AREA) if ds < 1 else work.gray
    allowed = cv2.resize(content.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.99 if ds < 1 else content
    n = params.patch
    r = n // 2
    if min(gray.shape) <= n:
        return []
    allowed = cv2.erode(allowed.astype(np.uint8), np.ones((n, n), np.uint8), borderValue=0).astype(bool)
    feats, std = patch_features(gray, n)
    usable = allowed & (std >= params.min_std)
    usable[:r], usable[-r:], usable[:, :r], usable[:, -r:] = False, False, False, False
    # a grid of patches is indexed and every usable pixel queries it, so a copy's offset need not be a
    # multiple of the grid: whichever end of a copied pair sits on the grid, the other end finds it
    ys, xs = np.nonzero(usable)
    if len(ys) < params.min_matches:
        return []
    stride = max(1, int(np.ceil(np.sqrt(len(ys) / max(params.max_patches, 1)))))
    on_grid = (ys % stride == 0) & (xs % stride == 0)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    desc = feats[ys, xs]
    del feats  # the largest array here (nine floats per pixel); the usable rows are all that is needed
    patch_std = std[ys, xs]
    grid_pts, grid_desc = pts[on_grid], desc[on_grid]
    if len(grid_pts) < params.min_matches:
        return []
    min_offset = min_offset_px * ds
    index = _HashIndex(grid_desc, params.hash_step)
    found: list[tuple[int, str, np.ndarray, np.ndarray]] = []
    for name in params.transforms:
        if name not in DIHEDRAL:
            raise ValueError(
                f"params: matcher.dense.transforms: unknown transform {name!r} (known: {sorted(DIHEDRAL)})"
            )
        q_idx, g_idx, dist = index.matches(desc, feature_transform(name, n), pts, grid_pts, min_offset, params)
        src, dst = pts[q_idx], grid_pts[g_idx]
        # near-exact matches vote fully, merely similar ones hardly: copies repeat pixels, lanes look alike;
        # "near-exact" includes what the figure's own compression leaves between a copy and its source
        expected = COPY_SPREAD * copy_error / (np.maximum(patch_std[q_idx], params.min_std) * n)
        votes = np.exp(-((dist / np.maximum(EXACT_SHARE * params.radius, expected)) ** 2))
        linear = np.array(DIHEDRAL[name], np.float64)
        src, dst = _fold(src, dst, linear)
        peaks = _offset_peaks(dst - src @ linear.T, votes, params)
        centres = np.array([np.median(dst[m] - src[m] @ linear.T, axis=0) for _, m in peaks]).reshape(-1, 2)
        lattice = _in_progression(centres, tol=2.0 * params.offset_bin_px)
        for (mass, members), periodic in zip(peaks, lattice, strict=True):
            if not periodic:
                found.append((mass, name, src[members], dst[members]))
    found.sort(key=lambda item: -item[0])
    candidates = []
    back = 1.0 / ds
    for count, name, src, dst in found[: params.max_candidates]:
        linear = np.array(DIHEDRAL[name], np.float64)
        src_w, dst_w = src * back, dst * back
        shift = np.median(dst_w - src_w @ linear.T, axis=0)
        candidates.append(
            Candidate(
                affine=np.hstack([linear, shift[:, None]]),
                src_pts=src_w,
                dst_pts=dst_w,
                origin="dense",
                support=round(count),
                src_panel=_mode(layout.panel_at(src_w)),
                dst_panel=_mode(layout.panel_at(dst_w)),
                extra={"transform": name},
            )
        )
    return candidates


class _HashIndex:
    """Descriptors hashed on two grids offset by half a step (pairs straddling a cell border of one grid
    share a cell of the other); each grid's cells sit in an open-addressing table (compiled lookups)."""

    def __init__(self, desc: np.ndarray, step: float):
        self.desc = np.ascontiguousarray(desc, np.float32)
        # cells are ``step`` standard deviations wide in every key dimension (whitened), so occupancy stays
        # even whether the figure is smooth (small coefficients) or busy; the transforms only permute and
        # negate key dimensions of equal frequency order, so one pooled spread per order keeps them exact
        spread = np.sqrt((desc[:, :KEY_DIMS] ** 2).mean(axis=0)) + 1e-6
        spread[:2] = spread[:2].mean()
        spread[2:KEY_DIMS] = spread[2:KEY_DIMS].mean()
        self.step = step * spread
        self.tables = []
        for shift in (0.0, 0.5):
            keys = _keys_of(self.desc, self.step, shift)
            order = np.argsort(keys, kind="stable")
            self.tables.append((order.astype(np.int64), RunTable(keys[order])))
            if shift == 0.0:
                self.own_key0 = keys  # each row's cell in the first grid

    def matches(
        self,
        desc: np.ndarray,
        transform: np.ndarray,
        pts: np.ndarray,
        grid_pts: np.ndarray,
        min_offset: float,
        params: DenseParams,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(query row, grid row, distance)`` of the matches each patch's transformed descriptor
        (``transform @ desc``) keeps among the grid patches, ordered by query row, then grid row.

        Candidates share a hash cell with the query in either grid and lie within twice the match radius;
        the patch's own neighbourhood (closer than ``min_offset``) is self-similarity and drops out; the
        generalised 2NN test (:func:`keypoints.gap_accept`) then keeps a clear nearest group, and of it
        the matches within the radius. A query whose cell is crowded (more than ``MAX_BUCKET`` patches)
        in either grid sits in featureless or repeated texture and keeps nothing: taking its few mates
        from the other grid would hide the repetition from the 2NN test.
        """
        (order0, table0), (order1, table1) = self.tables
        return _match_kernel(
            np.ascontiguousarray(desc, np.float32),
            np.ascontiguousarray(transform, np.float32),
            self.desc,
            self.step.astype(np.float64),
            order0,
            (table0.keys, table0.used, table0.start, table0.size),
            order1,
            (table1.keys, table1.used, table1.start, table1.size),
            self.own_key0,
            np.ascontiguousarray(pts, np.float64),
            np.ascontiguousarray(grid_pts, np.float64),
            float(min_offset),
            2.0 * params.radius,
            float(params.radius),
            float(params.ratio),
            int(params.max_copies),
            MAX_BUCKET,
            DISTANCE_FLOOR,
        )


def _keys_of(values: np.ndarray, step: np.ndarray, shift: float) -> np.ndarray:
    """One int64 key per row from its first ``KEY_DIMS`` coefficients quantised by ``step`` (per dimension);
    index and queries share this one compiled arithmetic, so equal descriptors always share a cell."""
    return _keys_compiled(np.ascontiguousarray(values, np.float32), step.astype(np.float64), float(shift))


@numba.njit(cache=True, nogil=True)
def _keys_compiled(values, step, shift):
    out = np.empty(len(values), np.int64)
    for i in range(len(values)):
        out[i] = _key(values[i], step, shift)
    return out


@numba.njit(cache=True, nogil=True)
def _key(row: np.ndarray, step: np.ndarray, shift: float) -> int:
    """The cell key of one row (``KEY_DIMS`` coefficients, each quantised to a byte)."""
    key = 0
    for d in range(KEY_DIMS):
        cell = int(np.floor(row[d] / step[d] + shift)) + 128
        key = key * 256 + min(max(cell, 0), 255)
    return key


@numba.njit(cache=True, nogil=True)
def _match_kernel(
    desc, transform, grid, step, order0, table0, order1, table1, own_key0, pts, grid_pts, min_offset, cap, radius,
    ratio, max_copies, crowd, floor,
):  # fmt: skip
    n_q, dims = desc.shape
    size = n_q // 4 + 64
    q_out = np.empty(size, np.int64)
    d_out = np.empty(size, np.int64)
    dist_out = np.empty(size, np.float32)
    m = 0
    query = np.empty(dims, np.float32)
    buf_d = np.empty(2 * crowd + 2, np.int64)
    buf_dist = np.empty(2 * crowd + 2, np.float32)
    gaps = np.empty(max_copies + 1, np.float64)
    for q in range(n_q):
        for k in range(dims):
            acc = np.float32(0.0)
            for j in range(dims):
                acc += transform[k, j] * desc[q, j]
            query[k] = acc
        k0 = _key(query, step, 0.0)
        s0, c0 = run_of(k0, table0[0], table0[1], table0[2], table0[3])
        s1, c1 = run_of(_key(query, step, 0.5), table1[0], table1[1], table1[2], table1[3])
        if c0 > crowd or c1 > crowd:
            continue
        found = 0
        for t in range(2):
            c = c0 if t == 0 else c1
            s = s0 if t == 0 else s1
            for j in range(c):
                d = order0[s + j] if t == 0 else order1[s + j]
                if t == 1 and own_key0[d] == k0:
                    continue  # already met in the first grid's cell
                acc = np.float32(0.0)
                for k in range(dims):
                    diff = query[k] - grid[d, k]
                    acc += diff * diff
                dist = np.sqrt(acc)
                if dist > cap:
                    continue
                dx = grid_pts[d, 0] - pts[q, 0]
                dy = grid_pts[d, 1] - pts[q, 1]
                if np.sqrt(dx * dx + dy * dy) < min_offset:
                    continue  # the patch itself and its spatial neighbours: self-similarity
                buf_d[found] = d
                buf_dist[found] = dist
                found += 1
        if found == 0:
            continue
        _sort_pairs(buf_dist, buf_d, found)  # by distance, then grid row
        for j in range(max_copies + 1):
            gaps[j] = buf_dist[j] + floor if j < found else np.inf
        first_gap = -1
        for j in range(max_copies):
            if np.isfinite(gaps[j]) and (gaps[j] < ratio * gaps[j + 1] or not np.isfinite(gaps[j + 1])):
                first_gap = j
                break
        if first_gap < 0:
            continue  # no clear nearest group: a repeated pattern
        kept = 0
        for j in range(min(first_gap + 1, found)):
            if buf_dist[j] <= radius:
                buf_d[kept], buf_dist[kept] = buf_d[j], buf_dist[j]
                kept += 1
        _sort_pairs_by_row(buf_d, buf_dist, kept)
        if m + kept > size:
            size = 2 * size + kept
            q_out, d_out, dist_out = _grown(q_out, m, size), _grown(d_out, m, size), _grown(dist_out, m, size)
        for j in range(kept):
            q_out[m], d_out[m], dist_out[m] = q, buf_d[j], buf_dist[j]
            m += 1
    return q_out[:m].copy(), d_out[:m].copy(), dist_out[:m].copy()


@numba.njit(cache=True, nogil=True)
def _sort_pairs(dist, rows, n) -> None:
    """Insertion sort of the first ``n`` entries by distance, then row."""
    for j in range(1, n):
        d, r = dist[j], rows[j]
        i = j - 1
        while i >= 0 and (dist[i] > d or (dist[i] == d and rows[i] > r)):
            dist[i + 1], rows[i + 1] = dist[i], rows[i]
            i -= 1
        dist[i + 1], rows[i + 1] = d, r


@numba.njit(cache=True, nogil=True)
def _sort_pairs_by_row(rows, dist, n) -> None:
    for j in range(1, n):
        r, d = rows[j], dist[j]
        i = j - 1
        while i >= 0 and rows[i] > r:
            rows[i + 1], dist[i + 1] = rows[i], dist[i]
            i -= 1
        rows[i + 1], dist[i + 1] = r, d


@numba.njit(cache=True, nogil=True)
def _grown(values, used, size):
    out = np.empty(size, values.dtype)
    out[:used] = values[:used]
    return out


def _in_progression(offsets: np.ndarray, tol: float) -> np.ndarray:
    """Peaks lying on an evenly spaced line of three or more peaks (lanes, grids, any repeated layout).

    Repeated structure puts peaks at ``t0 + k d`` for many ``k``; a copy puts one peak, a chain of two
    copies at one spacing two (``d`` and ``2 d``), neither of which makes three in a row.
    """
    marked = np.zeros(len(offsets), bool)
    for i in range(len(offsets)):
        for j in range(len(offsets)):
            step = offsets[j] - offsets[i]
            length = float(np.hypot(*step))
            if i == j or length <= tol:
                continue
            near = max(tol, 0.03 * length)
            ahead = np.linalg.norm(offsets - (offsets[j] + step), axis=1) <= near
            if ahead.any():
                marked[[i, j]] = True
                marked[ahead] = True
    return marked


def _fold(src: np.ndarray, dst: np.ndarray, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a transform that is its own inverse, write every pair in one direction.

    The pair ``p -> q`` (offset ``t = q - D p``) is also ``q -> p`` (offset ``-D t``); which end found the
    other depends on which sat on the grid, so both offsets get votes. Swapping ends so that the offset is
    the lexicographically larger of the two puts all of a copy's votes in one peak.
    """
    if not np.allclose(linear @ linear, np.eye(2)):
        return src, dst
    t = dst - src @ linear.T
    reverse = -t @ linear.T
    swap = (reverse[:, 0] > t[:, 0]) | ((reverse[:, 0] == t[:, 0]) & (reverse[:, 1] > t[:, 1]))
    src, dst = src.copy(), dst.copy()
    src[swap], dst[swap] = dst[swap], src[swap].copy()
    return src, dst


def _offset_peaks(offsets: np.ndarray, weights: np.ndarray, params: DenseParams) -> list[tuple[float, np.ndarray]]:
    """Greedy peaks of the weighted 2-D offset histogram (3 x 3 bin neighbourhoods) with their members."""
    if len(offsets) == 0 or weights.sum() < params.min_matches:
        return []
    cells = np.floor(offsets / params.offset_bin_px).astype(np.int64)
    span = int(np.abs(cells).max()) + 2
    keys = (cells[:, 0] + span) * (4 * span) + (cells[:, 1] + span)
    uniq, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.ravel()
    mass = np.bincount(inverse, weights=weights, minlength=len(uniq))
    neighbour_keys = uniq[:, None] + np.array([dx * 4 * span + dy for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
    pos = np.clip(np.searchsorted(uniq, neighbour_keys), 0, len(uniq) - 1)
    present = uniq[pos] == neighbour_keys
    smoothed = (mass[pos] * present).sum(axis=1)
    peaks = []
    taken = np.zeros(len(uniq), bool)
    for k in np.argsort(-smoothed, kind="stable"):
        if smoothed[k] < params.min_matches:
            break
        if taken[k]:
            continue
        block = pos[k][present[k]]
        taken[block] = True
        members = np.flatnonzero(np.isin(inverse, block))
        peaks.append((float(smoothed[k]), members))
        if len(peaks) >= params.max_candidates:
            break
    return peaks


def _mode(values: np.ndarray) -> int:
    values = values[values >= 0]
    if len(values) == 0:
        return -1
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[np.argmax(counts)])
