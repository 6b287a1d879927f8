"""Scorer and RLE throughput, each next to the straightforward reference in tests/reference_metric.py."""

from __future__ import annotations

import time

import numpy as np

from shared import metric, rle
from tests import reference_metric as ref


def _blob(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for _ in range(rng.integers(1, 4)):
        h, w = rng.integers(20, 160, 2)
        y, x = rng.integers(0, shape[0] - h), rng.integers(0, shape[1] - w)
        mask[y : y + h, x : x + w] = 1
    return mask


def make_rows(n_rows: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``(label, prediction, shape)`` rows of about 1000 x 1000 px: a third authentic, the rest forged."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_rows):
        shape = (int(rng.integers(900, 1100)), int(rng.integers(900, 1100)))
        if rng.random() < 0.33:
            rows.append(
                ("authentic", "authentic" if rng.random() < 0.8 else rle.encode(_blob(rng, shape)), "authentic")
            )
            continue
        true = [_blob(rng, shape) for _ in range(rng.integers(1, 4))]
        pred = [np.roll(m, int(rng.integers(-10, 10)), axis=1) for m in true[: rng.integers(1, 4)]]
        if rng.random() < 0.3:
            pred.append(_blob(rng, shape))
        rows.append((rle.encode_instances(true), rle.encode_instances(pred), f"[{shape[0]}, {shape[1]}]"))
    return rows


def _rate(fn, items) -> tuple[float, list]:
    start = time.perf_counter()
    out = [fn(item) for item in items]
    return len(items) / (time.perf_counter() - start), out


def run() -> list[dict]:
    rows = make_rows(1000)
    fast_rate, fast = _rate(lambda r: metric.row_score(*r), rows)
    subset = rows[:100]
    ref_rate, slow = _rate(lambda r: ref.row_score(*r), subset)
    assert np.allclose(fast[:100], slow, atol=1e-12), "scorer disagrees with the reference"

    rng = np.random.default_rng(1)
    masks = [_blob(rng, (1000, 1000)) for _ in range(50)]
    texts = [rle.encode(m) for m in masks]
    enc_rate, _ = _rate(rle.encode, masks)
    enc_ref_rate, _ = _rate(ref.encode, masks[:3])
    dec_rate, _ = _rate(lambda t: rle.decode(t, (1000, 1000)), texts)
    dec_ref_rate, _ = _rate(lambda t: ref.decode(t, (1000, 1000)), texts)
    speckle = [rle.encode(rng.random((1000, 1000)) < 0.05) for _ in range(5)]  # ~50k runs each
    speckle_rate, _ = _rate(lambda t: rle.decode(t, (1000, 1000)), speckle)
    speckle_ref_rate, _ = _rate(lambda t: ref.decode(t, (1000, 1000)), speckle[:2])

    def row(what: str, ours: float, reference: float) -> dict:
        return {"what": what, "ours": ours, "reference": reference, "ratio": ours / reference}

    return [
        row("scorer, rows/s (1000 rows, ~1000x1000 px)", fast_rate, ref_rate),
        row("RLE encode, masks/s (1000x1000)", enc_rate, enc_ref_rate),
        row("RLE decode, masks/s (1000x1000 blobs)", dec_rate, dec_ref_rate),
        row("RLE decode, masks/s (1000x1000 speckle, ~50k runs)", speckle_rate, speckle_ref_rate),
    ]
