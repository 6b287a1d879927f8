"""The compiled hash lookups of the dense and small-copy branches against plain restatements."""

import numpy as np

from models.matcher.dense import MAX_BUCKET, _HashIndex, _keys_of
from models.matcher.hashtable import RunTable
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


def test_dense_neighbours_equal_a_pair_by_pair_restatement():
    rng = np.random.default_rng(2)
    desc = rng.normal(0, 0.1, (400, 9)).astype(np.float32)
    desc[200:260] = desc[0]  # a crowded cell: its members and queries landing there get no neighbours
    query = np.concatenate([desc[1:51], desc[:50] + rng.normal(0, 0.01, (50, 9)), rng.normal(0, 0.1, (300, 9))])
    query = query.astype(np.float32)
    index = _HashIndex(desc, 0.35)
    cap = 0.2
    got = set(zip(*(a.tolist() for a in index.neighbours(query, cap)[:2]), strict=True))

    cells = [(_keys_of(desc, index.step, s), _keys_of(query, index.step, s)) for s in (0.0, 0.5)]
    expected = set()
    for q in range(len(query)):
        if any((own == mine[q]).sum() > MAX_BUCKET for own, mine in cells):
            continue
        for d in range(len(desc)):
            shares = any(own[d] == mine[q] for own, mine in cells)
            if shares and np.linalg.norm(query[q] - desc[d]) <= cap:
                expected.add((q, d))
    assert got == expected
    assert {(q, q + 1) for q in range(50)} <= got  # exact copies always share a cell
    q_idx, d_idx, dist = index.neighbours(query, cap)
    assert np.all(np.diff(q_idx * len(desc) + d_idx) > 0)  # ordered by query, then row, no repeats
    assert np.allclose(dist, np.linalg.norm(query[q_idx] - desc[d_idx], axis=1), atol=1e-6)


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
