"""Run-length encoding with exactly the competition's semantics.

Pixels are read in column-major (Fortran) order, runs are ``start, length`` pairs with 1-based
starts, one instance is a JSON list written with ``", "`` separators and instances are joined by
``;``. Decoding reproduces the official decoder, including its three error messages and the
inputs it silently accepts (empty list, zero-length runs, runs past the image end, start ``0``,
equal starts, fractional values).

Everything is vectorised: a mask never goes through a per-pixel Python loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

AUTHENTIC = "authentic"

MSG_ASCENDING = "Submitted values must be in ascending order."
MSG_ODD = "One or more rows has an odd number of values."
MSG_OVERLAP = "Pixels must not be overlapping."


class RLEError(ValueError):
    """An RLE string the official decoder rejects (message = the official one where it has one)."""


def mask_to_runs(mask: np.ndarray, order: str = "F") -> tuple[np.ndarray, np.ndarray]:
    """0-based starts and exclusive ends of the foreground runs of ``mask``.

    ``order="F"`` (column-major) is the competition's pixel order; ``"C"`` is faster where only
    areas and overlaps matter.
    """
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    flat = np.asarray(mask).reshape(-1, order=order) != 0
    padded = np.concatenate(([False], flat, [False])).view(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def encode(mask: np.ndarray) -> str:
    """One instance as the official JSON run list (``[]`` for an all-zero mask)."""
    starts, ends = mask_to_runs(mask)
    runs = np.empty(2 * len(starts), dtype=np.int64)
    runs[0::2] = starts + 1
    runs[1::2] = ends - starts
    return json.dumps(runs.tolist())


def encode_instances(masks: Iterable[np.ndarray]) -> str:
    """Instances joined by ``;`` exactly as given (empty masks encode as ``[]``)."""
    return ";".join(encode(m) for m in masks)


def format_annotation(masks: Iterable[np.ndarray]) -> str:
    """Submission cell for one image: drops empty and duplicate instances, ``authentic`` if none remain."""
    kept: list[str] = []
    for mask in masks:
        text = encode(mask)
        if text != "[]" and text not in kept:
            kept.append(text)
    return ";".join(kept) if kept else AUTHENTIC


def parse_runs(text: str) -> np.ndarray:
    """Parse and check one instance's run list; returns the raw int values as the official decoder sees them.

    Raises :class:`RLEError` with the official message for non-ascending starts, an odd count of values
    and overlapping runs, and with a descriptive message for text the official decoder crashes on.
    """
    try:
        values = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise RLEError(f"not a JSON list of runs: {text!r:.80}") from exc
    try:
        runs = np.asarray(values, dtype=np.int32)  # the official decoder converts exactly like this
    except (OverflowError, ValueError, TypeError) as exc:
        raise RLEError(f"run values are not int32 numbers: {text!r:.80}") from exc
    if runs.ndim != 1:
        raise RLEError(f"not a flat JSON list of numbers: {text!r:.80}")
    starts = runs[0::2].astype(np.int64)
    if np.any(np.diff(starts) < 0):
        raise RLEError(MSG_ASCENDING)
    if len(runs) % 2:
        raise RLEError(MSG_ODD)
    ends = starts + runs[1::2]
    if np.any(ends[:-1] > starts[1:]):
        raise RLEError(MSG_OVERLAP)
    return runs


def runs_to_intervals(runs: np.ndarray, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel intervals ``[lo, hi)`` that the official decoder paints for checked ``runs``.

    Reproduces Python slice semantics of ``img[start - 1 : start - 1 + length]``: negative bounds wrap
    once, bounds are clipped to the image, empty slices paint nothing. Returned intervals are sorted and
    disjoint (touching intervals are merged).
    """
    lo = runs[0::2].astype(np.int64) - 1
    hi = lo + runs[1::2]
    lo, hi = _slice_bound(lo, n_pixels), _slice_bound(hi, n_pixels)
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    if len(lo) == 0:
        return lo, hi
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    # merge overlapping or touching intervals (only possible after a negative start wrapped around)
    reach = np.maximum.accumulate(hi)
    new_group = np.concatenate(([True], lo[1:] > reach[:-1]))
    group = np.cumsum(new_group) - 1
    merged_lo = lo[new_group]
    merged_hi = np.zeros(len(merged_lo), dtype=np.int64)
    np.maximum.at(merged_hi, group, hi)
    return merged_lo, merged_hi


def _slice_bound(bound: np.ndarray, n: int) -> np.ndarray:
    bound = np.where(bound < 0, bound + n, bound)
    return np.clip(bound, 0, n)


def intervals_to_mask(lo: np.ndarray, hi: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Paint disjoint column-major intervals into an ``(H, W)`` uint8 mask without a Python loop.

    Cost is proportional to the painted pixels when the mask is sparse (index fill), and one cumulative
    sum over the image when it is dense. The result is a Fortran-ordered view, as the official decoder's.
    """
    height, width = int(shape[0]), int(shape[1])
    n = height * width
    lengths = hi - lo
    total = int(lengths.sum())
    if total * 4 < n:
        flat = np.zeros(n, dtype=np.uint8)
        if total:
            steps = np.ones(total, dtype=np.int64)
            steps[0] = lo[0]
            steps[np.cumsum(lengths[:-1])] = lo[1:] - hi[:-1] + 1
            flat[np.cumsum(steps)] = 1
    else:
        delta = np.zeros(n + 1, dtype=np.int8)
        delta[lo] = 1  # intervals are disjoint and never touch, so no index repeats
        delta[hi] = -1
        flat = np.cumsum(delta[:-1], dtype=np.int8).view(np.uint8)
    return flat.reshape((width, height)).T


def decode(text: str, shape: Sequence[int]) -> np.ndarray:
    """One instance's run list to an ``(H, W)`` uint8 mask, exactly as the official decoder paints it."""
    n = int(shape[0]) * int(shape[1])
    lo, hi = runs_to_intervals(parse_runs(text), n)
    return intervals_to_mask(lo, hi, shape)


def split_instances(annotation: str) -> list[str]:
    """Split a non-authentic annotation into instance run lists (as the official metric: on ``;``)."""
    return annotation.split(";")


def decode_instances(annotation: str, shape: Sequence[int]) -> list[np.ndarray]:
    """All instances of an annotation (``authentic`` gives an empty list)."""
    if annotation == AUTHENTIC:
        return []
    return [decode(part, shape) for part in split_instances(annotation)]
