"""A compiled open-addressing hash table from int64 keys to runs ``(start, size)`` of a sorted array.

The dense and small-copy branches look millions of per-pixel keys up among the keys of indexed pixels;
``np.searchsorted`` of unsorted queries pays a cache-missing binary search per query, this pays one probe.
"""

from __future__ import annotations

import numba
import numpy as np


class RunTable:
    """``key -> (start, size)`` for the runs of equal keys in ``sorted_keys`` (ascending)."""

    def __init__(self, sorted_keys: np.ndarray):
        sorted_keys = np.ascontiguousarray(sorted_keys).view(np.int64) if len(sorted_keys) else np.zeros(0, np.int64)
        cells, start, size = np.unique(sorted_keys, return_index=True, return_counts=True)
        bits = max(4, int(np.ceil(np.log2(2 * len(cells) + 1))))
        self.keys = np.zeros(1 << bits, np.int64)
        self.used = np.zeros(1 << bits, np.bool_)
        self.start = np.zeros(1 << bits, np.int64)
        self.size = np.zeros(1 << bits, np.int64)
        _fill(
            cells.astype(np.int64),
            start.astype(np.int64),
            size.astype(np.int64),
            self.keys,
            self.used,
            self.start,
            self.size,
        )

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start, size)`` per key (size 0 where the key is absent)."""
        return _lookup_many(np.ascontiguousarray(keys).view(np.int64), self.keys, self.used, self.start, self.size)


@numba.njit(cache=True, nogil=True)
def slot(key: int, keys: np.ndarray, used: np.ndarray) -> int:
    """Slot holding ``key``, or the free slot where it would go (linear probing)."""
    mask = len(keys) - 1
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    i = int(h >> np.uint64(40)) & mask
    while used[i] and keys[i] != key:
        i = (i + 1) & mask
    return i


@numba.njit(cache=True, nogil=True)
def run_of(key: int, keys: np.ndarray, used: np.ndarray, start: np.ndarray, size: np.ndarray) -> tuple[int, int]:
    """``(start, size)`` of ``key``'s run; size 0 when absent."""
    i = slot(key, keys, used)
    if used[i]:
        return start[i], size[i]
    return 0, 0


@numba.njit(cache=True, nogil=True)
def _fill(cells, start, size, keys, used, slot_start, slot_size) -> None:
    for k in range(len(cells)):
        i = slot(cells[k], keys, used)
        keys[i] = cells[k]
        used[i] = True
        slot_start[i] = start[k]
        slot_size[i] = size[k]


@numba.njit(cache=True, nogil=True)
def _lookup_many(query, keys, used, start, size):
    out_start = np.zeros(len(query), np.int64)
    out_size = np.zeros(len(query), np.int64)
    for q in range(len(query)):
        out_start[q], out_size[q] = run_of(query[q], keys, used, start, size)
    return out_start, out_size
