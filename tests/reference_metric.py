"""Straightforward reference implementations of the competition's RLE and oF1, written for clarity.

They follow the rules in ../shared/COMPETITION.md literally (pixel loops, full-image passes, brute
force over every assignment) so that the fast implementations in ``shared`` can be checked against
them in property tests and benchmarked against them.
"""

from __future__ import annotations

import itertools
import json

import numpy as np

ERRORS = (
    "Submitted values must be in ascending order.",
    "One or more rows has an odd number of values.",
    "Pixels must not be overlapping.",
)


class ReferenceDecodeError(ValueError):
    pass


def encode(mask: np.ndarray) -> str:
    """Column-major, 1-based runs with a plain loop over pixels."""
    flat = mask.T.flatten()
    runs: list[int] = []
    previous = False
    for index, value in enumerate(flat):
        if value and not previous:
            runs += [index + 1, 0]
        if value:
            runs[-1] += 1
        previous = bool(value)
    return json.dumps(runs)


def decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode by painting each run with Python slicing, after the official checks in the official order."""
    values = [int(v) for v in json.loads(text)]
    starts = values[0::2]
    if sorted(starts) != starts:
        raise ReferenceDecodeError(ERRORS[0])
    if len(values) % 2:
        raise ReferenceDecodeError(ERRORS[1])
    lengths = values[1::2]
    for i in range(len(starts) - 1):
        if starts[i] - 1 + lengths[i] > starts[i + 1] - 1:
            raise ReferenceDecodeError(ERRORS[2])
    flat = np.zeros(shape[0] * shape[1], dtype=bool)
    for start, length in zip(starts, lengths, strict=True):
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape(shape, order="F")


def pixel_f1(pred: np.ndarray, true: np.ndarray) -> float:
    tp = np.sum(pred & true)
    fp = np.sum(pred & ~true)
    fn = np.sum(~pred & true)
    precision = tp / (tp + fp) if tp + fp > 0 else 0
    recall = tp / (tp + fn) if tp + fn > 0 else 0
    return 2 * (precision * recall) / (precision + recall) if precision + recall > 0 else 0.0


def best_assignment_sum(f1: np.ndarray) -> float:
    """Maximum total F1 over every one-to-one assignment (brute force)."""
    n_pred, n_true = f1.shape
    best = 0.0
    if n_pred >= n_true:
        for rows in itertools.permutations(range(n_pred), n_true):
            best = max(best, sum(f1[r, c] for c, r in enumerate(rows)))
    else:
        for cols in itertools.permutations(range(n_true), n_pred):
            best = max(best, sum(f1[r, c] for r, c in enumerate(cols)))
    return best


def row_score(label: str, prediction: str, shape_text: str) -> float:
    if label == "authentic" or prediction == "authentic":
        return float(label == prediction)
    shape = tuple(json.loads(shape_text))
    true = [decode(part, shape) for part in label.split(";")]
    pred = [decode(part, shape) for part in prediction.split(";")]
    f1 = np.array([[pixel_f1(p, t) for t in true] for p in pred])
    return best_assignment_sum(f1) / max(len(pred), len(true))


def score(rows: list[tuple[str, str, str]]) -> float:
    """Mean row score over ``(label, prediction, shape)`` triples."""
    return float(np.mean([row_score(*row) for row in rows]))
