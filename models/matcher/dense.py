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
from models.matcher.keypoints import gap_accept
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
        query = desc @ feature_transform(name, n).T.astype(np.float32)
        q_idx, g_idx, dist = index.neighbours(query, 2 * params.radius)
        # the patch itself and its spatial neighbours are self-similarity, not candidates
        far = np.linalg.norm(grid_pts[g_idx] - pts[q_idx], axis=1) >= min_offset
        q_idx, g_idx, dist = q_idx[far], g_idx[far], dist[far]
        keep = _g2nn(q_idx, dist, params.ratio, params.max_copies, params.radius)
        src, dst = pts[q_idx[keep]], grid_pts[g_idx[keep]]
        # near-exact matches vote fully, merely similar ones hardly: copies repeat pixels, lanes look alike;
        # "near-exact" includes what the figure's own compression leaves between a copy and its source
        expected = COPY_SPREAD * copy_error / (np.maximum(patch_std[q_idx[keep]], params.min_std) * n)
        votes = np.exp(-((dist[keep] / np.maximum(EXACT_SHARE * params.radius, expected)) ** 2))
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
        self.own_key0 = _keys_of(self.desc, self.step, 0.0)  # each row's cell in the first grid

    def neighbours(self, query: np.ndarray, cap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(query row, desc row, distance)`` for every hash-cell mate closer than ``cap``, ordered by query
        row, then desc row.

        A query whose cell is crowded (more than ``MAX_BUCKET`` patches) in either grid sits in featureless
        or repeated texture and gets no neighbours at all: taking its few mates from the other grid would
        hide the repetition from the 2NN test.
        """
        (order0, table0), (order1, table1) = self.tables
        return _lookup(
            np.ascontiguousarray(query, np.float32),
            self.desc,
            self.step.astype(np.float64),
            order0,
            (table0.keys, table0.used, table0.start, table0.size),
            order1,
            (table1.keys, table1.used, table1.start, table1.size),
            self.own_key0,
            float(cap),
            MAX_BUCKET,
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
def _lookup(query, desc, step, order0, table0, order1, table1, own_key0, cap, crowd):
    n_q, dims = query.shape
    first = np.empty(n_q, np.int64)
    count = np.empty(n_q, np.int64)
    second = np.empty(n_q, np.int64)
    count1 = np.empty(n_q, np.int64)
    keys0 = np.empty(n_q, np.int64)
    total = 0
    for q in range(n_q):
        k0 = _key(query[q], step, 0.0)
        k1 = _key(query[q], step, 0.5)
        keys0[q] = k0
        s0, c0 = run_of(k0, table0[0], table0[1], table0[2], table0[3])
        s1, c1 = run_of(k1, table1[0], table1[1], table1[2], table1[3])
        if c0 > crowd or c1 > crowd:
            c0 = 0
            c1 = 0
        first[q], count[q] = s0, c0
        second[q], count1[q] = s1, c1
        total += c0 + c1
    q_out = np.empty(total, np.int64)
    d_out = np.empty(total, np.int64)
    dist_out = np.empty(total, np.float32)
    buf_d = np.empty(2 * crowd + 2, np.int64)
    buf_dist = np.empty(2 * crowd + 2, np.float32)
    m = 0
    for q in range(n_q):
        found = 0
        for t in range(2):
            c = count[q] if t == 0 else count1[q]
            s = first[q] if t == 0 else second[q]
            for j in range(c):
                d = order0[s + j] if t == 0 else order1[s + j]
                if t == 1 and own_key0[d] == keys0[q]:
                    continue  # already met in the first grid's cell
                acc = np.float32(0.0)
                for k in range(dims):
                    diff = query[q, k] - desc[d, k]
                    acc += diff * diff
                dist = np.sqrt(acc)
                if dist <= cap:
                    buf_d[found] = d
                    buf_dist[found] = dist
                    found += 1
        for j in range(1, found):  # insertion sort by desc row (a few mates per query)
            d, dist = buf_d[j], buf_dist[j]
            i = j - 1
            while i >= 0 and buf_d[i] > d:
                buf_d[i + 1], buf_dist[i + 1] = buf_d[i], buf_dist[i]
                i -= 1
            buf_d[i + 1], buf_dist[i + 1] = d, dist
        for j in range(found):
            q_out[m], d_out[m], dist_out[m] = q, buf_d[j], buf_dist[j]
            m += 1
    return q_out[:m], d_out[:m], dist_out[:m]


def _g2nn(q_idx: np.ndarray, dist: np.ndarray, ratio: float, max_copies: int, radius: float) -> np.ndarray:
    """Generalised 2NN over each query's neighbours (see :func:`keypoints.gap_accept`)."""
    if len(q_idx) == 0:
        return np.zeros(0, bool)
    # one float sort key: query index, then distance (scaled into [0, 0.5))
    order = np.argsort(q_idx * 1.0 + dist / (2.0 * max(float(dist.max()), 1e-9) + 1e-9))
    q_sorted = q_idx[order]
    starts = np.flatnonzero(np.concatenate(([True], q_sorted[1:] != q_sorted[:-1])))
    group = np.cumsum(np.concatenate(([False], q_sorted[1:] != q_sorted[:-1])))
    rank = np.arange(len(order)) - starts[group]
    table = np.full((len(starts), max_copies + 1), np.inf, np.float32)
    inside = rank <= max_copies
    table[group[inside], rank[inside]] = dist[order][inside]
    accepted = gap_accept(table, ratio, max_copies)
    keep_sorted = np.zeros(len(order), bool)
    low = rank < max_copies
    keep_sorted[low] = accepted[group[low], rank[low]]
    keep = np.zeros(len(order), bool)
    keep[order] = keep_sorted
    return keep & (dist <= radius)


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
