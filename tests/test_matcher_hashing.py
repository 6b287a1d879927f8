"""The compiled hash lookups of the dense and small-copy branches against plain restatements."""

from types import SimpleNamespace

import numpy as np

from models.matcher.dense import MAX_BUCKET, _HashIndex, _keys_of
from models.matcher.hashtable import RunTable
from models.matcher.keypoints import gap_accept
from models.matcher.smallcopies import RADIUS, _hash


def test_run_table_finds_every_run_and_nothing_else():
    rng = np.random.default_rng(1)
    keys = np.sort(rng.integers(-(2**62), 2**62, 3000, dtype=np.int64).repeat(rng.integers(1, 4, 3000)))
    table = RunTable(keys)
    absent = rng.integers(-(2**62), 2**62, 500, dtype=np.int64)
    absent = absent[~np.isin(absent, keys)]
    query = np.concatenate([keys[::7], absent])
    start, size = table.lookup(query)
    for key, s, n in zip(query, start, size, strict=True):
        expected = np.flatnonzero(keys == key)
        assert n == len(expected)
        if n:
            assert s == expected[0]


def test_uint64_keys_are_looked_up_by_their_bits():
    keys = np.array([1, 2**63 + 5, 2**64 - 1], np.uint64)
    start, size = RunTable(np.sort(keys)).lookup(np.array([2**64 - 1, 3], np.uint64))
    assert size.tolist() == [1, 0]
    assert start[0] == 2  # position in the caller's (unsigned) order


def _dense_params(radius: float = 0.1, ratio: float = 0.6, max_copies: int = 3):
    return SimpleNamespace(radius=radius, ratio=ratio, max_copies=max_copies)


def test_dense_matches_equal_a_pair_by_pair_restatement():
    rng = np.random.default_rng(2)
    grid = rng.normal(0, 0.1, (400, 9)).astype(np.float32)
    grid[200:260] = grid[0]  # a crowded cell: queries landing there keep nothing
    grid_pts = rng.uniform(0, 300, (400, 2))
    desc = np.concatenate([grid[1:51], grid[:50] + rng.normal(0, 0.01, (50, 9)), rng.normal(0, 0.1, (300, 9))])
    desc = desc.astype(np.float32)
    pts = rng.uniform(0, 300, (len(desc), 2))
    pts[:50] = grid_pts[1:51] + 2.0  # the exact repeats of rows 1-50 sit next to them: self-similarity
    pts[:10] = grid_pts[1:11] + 100.0  # ... except these ten, far away: copies
    transform = np.eye(9)
    params = _dense_params()
    index = _HashIndex(grid, 0.35)
    q_idx, g_idx, dist = index.matches(desc, transform, pts, grid_pts, 20.0, params)

    cells = [(_keys_of(grid, index.step, s), _keys_of(desc, index.step, s)) for s in (0.0, 0.5)]
    expected = set()
    for q in range(len(desc)):
        if any((own == mine[q]).sum() > MAX_BUCKET for own, mine in cells):
            continue
        mates = []
        for d in range(len(grid)):
            near = np.linalg.norm(desc[q] - grid[d])
            shares = any(own[d] == mine[q] for own, mine in cells)
            if shares and near <= 2 * params.radius and np.linalg.norm(grid_pts[d] - pts[q]) >= 20.0:
                mates.append((near, d))
        mates.sort()
        row = np.full((1, params.max_copies + 1), np.inf, np.float32)
        row[0, : min(len(mates), params.max_copies + 1)] = [m for m, _ in mates[: params.max_copies + 1]]
        accepted = gap_accept(row, params.ratio, params.max_copies)[0]
        expected |= {
            (q, d) for rank, (m, d) in enumerate(mates[: params.max_copies]) if accepted[rank] and m <= params.radius
        }
    got = set(zip(q_idx.tolist(), g_idx.tolist(), strict=True))
    assert got == expected
    assert {(q, q + 1) for q in range(10)} <= got  # exact copies always share a cell
    assert not any(10 <= q < 50 for q in q_idx)  # exact repeats next door are self-similarity
    assert np.all(np.diff(q_idx * len(grid) + g_idx) > 0)  # ordered by query, then row, no repeats
    assert np.allclose(dist, np.linalg.norm(desc[q_idx] - grid[g_idx], axis=1), atol=1e-6)


def test_dense_matches_apply_the_descriptor_transform():
    rng = np.random.default_rng(4)
    grid = rng.normal(0, 0.1, (300, 9)).astype(np.float32)
    grid_pts = rng.uniform(0, 300, (300, 2))
    swap = np.eye(9)[[1, 0, 2, 3, 4, 5, 6, 7, 8]] * np.array([-1, 1, 1, 1, 1, 1, 1, 1, 1])[:, None]
    desc = (grid[:40] @ np.linalg.inv(swap).T).astype(np.float32)  # transform @ desc gives the grid row back
    pts = grid_pts[:40] + 150.0
    index = _HashIndex(grid, 0.35)
    q_idx, g_idx, _ = index.matches(desc, swap, pts, grid_pts, 20.0, _dense_params())
    assert set(zip(q_idx.tolist(), g_idx.tolist(), strict=True)) >= {(q, q) for q in range(40)}
    plain, _, _ = index.matches(desc, np.eye(9), pts, grid_pts, 20.0, _dense_params())
    assert len(plain) < 10


def test_small_copy_hash_reads_the_neighbourhood_in_the_transformed_orientation():
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    weights = rng.integers(1, 2**63, 9, dtype=np.uint64) | np.uint64(1)
    ys, xs = np.mgrid[0:20, 0:24]
    ys, xs = ys.ravel().astype(np.int64), xs.ravel().astype(np.int64)
    flipped = np.ascontiguousarray(gray[:, ::-1])
    # pixel (y, x) of the flipped image read under flip_h = pixel (y, w-1-x) of the original read plainly
    plain = _hash(gray, np.eye(2, dtype=np.int64), weights, ys, xs)
    mirrored = _hash(flipped, np.array([[-1, 0], [0, 1]]), weights, ys, 23 - xs)
    assert np.array_equal(plain, mirrored)
    padded = np.pad(gray, RADIUS, mode="edge").astype(np.uint64)
    by_hand = sum(
        weights[k] * padded[1 + oy + ys, 1 + ox + xs]
        for k, (oy, ox) in enumerate((oy, ox) for oy in (-1, 0, 1) for ox in (-1, 0, 1))
    )
    assert np.array_equal(plain, by_hand)
