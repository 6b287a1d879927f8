"""The competition metric (oF1, "recodai-f1"), reproduced exactly and computed from runs.

Per row: if the label or the prediction is the literal ``authentic`` the row scores 1 when both are,
else 0 (the prediction is then never decoded, as in the official metric). Otherwise every predicted
and true instance is decoded, the pixel-F1 matrix is built, the one-to-one assignment maximising
total F1 is found (Hungarian) and the row scores ``sum of matched F1 / max(P, G)``. The final score is
the plain mean over rows.

Pair intersections come from a sweep over run boundaries, never from full-image passes: the cost is
proportional to the number of runs, not to the number of pixels times ``P x G``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from shared.rle import AUTHENTIC, RLEError, mask_to_runs, parse_runs, runs_to_intervals, split_instances

Intervals = tuple[np.ndarray, np.ndarray]


class ScoringError(ValueError):
    """A solution or submission the metric cannot score; the message names the source and the row."""


def intersection_matrix(pred: Sequence[Intervals], true: Sequence[Intervals]) -> np.ndarray:
    """Pixel counts shared by every predicted and true instance, from disjoint sorted intervals."""
    out = np.zeros((len(pred), len(true)), dtype=np.int64)
    if not pred or not true:
        return out
    bounds = np.unique(np.concatenate([np.concatenate(iv) for iv in [*pred, *true]]))
    if len(bounds) < 2:
        return out
    seg_start, seg_len = bounds[:-1], np.diff(bounds)

    def membership(instances: Sequence[Intervals]) -> np.ndarray:
        cols = []
        for lo, hi in instances:
            idx = np.searchsorted(lo, seg_start, side="right") - 1
            inside = (idx >= 0) & (hi[np.maximum(idx, 0)] > seg_start) if len(lo) else np.zeros_like(seg_start, bool)
            cols.append(inside)
        return np.stack(cols, axis=1)

    weighted = membership(pred) * seg_len[:, None]
    return weighted.T @ membership(true).astype(np.int64)


def f1_matrix(inter: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> np.ndarray:
    """Pixel F1 for every pair, with the official formula ``2PR / (P + R)`` (0 when undefined)."""
    tp = inter.astype(np.float64)
    pa = pred_area[:, None].astype(np.float64)
    ta = true_area[None, :].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pa > 0, tp / pa, 0.0)
        recall = np.where(ta > 0, tp / ta, 0.0)
        total = precision + recall
        return np.where(total > 0, 2 * (precision * recall) / total, 0.0)


def optimal_f1(f1: np.ndarray) -> float:
    """Hungarian-matched F1 of a ``P x G`` matrix, penalised by ``G / max(P, G)`` as the official metric."""
    n_pred, n_true = f1.shape
    if n_pred < n_true:
        f1 = np.vstack([f1, np.zeros((n_true - n_pred, n_true))])
    rows, cols = linear_sum_assignment(-f1)
    return float(np.mean(f1[rows, cols]) * (n_true / max(n_pred, n_true)))


def of1_intervals(pred: Sequence[Intervals], true: Sequence[Intervals]) -> float:
    """oF1 of one forged row given both sides as interval lists."""
    inter = intersection_matrix(pred, true)
    pred_area = np.array([int((hi - lo).sum()) for lo, hi in pred], dtype=np.int64)
    true_area = np.array([int((hi - lo).sum()) for lo, hi in true], dtype=np.int64)
    return optimal_f1(f1_matrix(inter, pred_area, true_area))


def of1_masks(pred_masks: Sequence[np.ndarray], true_masks: Sequence[np.ndarray]) -> float:
    """oF1 of one row from binary masks; an empty prediction list means ``authentic``.

    Convenient for tuning on out-of-fold maps without going through RLE strings.
    """
    if not pred_masks or not true_masks:
        return float(not pred_masks and not true_masks)
    return of1_intervals([mask_to_runs(m, "C") for m in pred_masks], [mask_to_runs(m, "C") for m in true_masks])


def annotation_intervals(annotation: str, n_pixels: int) -> list[Intervals]:
    """Decode a non-authentic annotation straight to interval lists (no mask is painted)."""
    return [runs_to_intervals(parse_runs(part), n_pixels) for part in split_instances(annotation)]


def parse_shape(text: str) -> tuple[int, int]:
    """The solution's ``shape`` cell ``"[H, W]"`` as a tuple."""
    value = json.loads(text)
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f"shape must be '[H, W]' with positive ints, got {text!r}")
    return value[0], value[1]


def row_score(label: str, prediction: str, shape: str) -> float:
    """Score of one row exactly as the official metric computes it."""
    if label == AUTHENTIC or prediction == AUTHENTIC:
        return float(label == prediction)
    height, width = parse_shape(shape)
    n_pixels = height * width
    return of1_intervals(annotation_intervals(prediction, n_pixels), annotation_intervals(label, n_pixels))


@dataclass
class ScoreReport:
    """Per-row scores (``case_id, truth, predicted, n_true, n_pred, score``) and their summary."""

    per_row: pd.DataFrame

    @property
    def score(self) -> float:
        return float(np.mean(self.per_row["score"].to_numpy(np.float64))) if len(self.per_row) else 0.0

    def breakdown(self) -> dict[str, float]:
        """Overall oF1, authentic accuracy, forged-row oF1 and forged detection rate."""
        rows = self.per_row
        authentic = rows[rows["truth"] == AUTHENTIC]
        forged = rows[rows["truth"] != AUTHENTIC]
        return {
            "oF1": self.score,
            "n_rows": len(rows),
            "n_authentic": len(authentic),
            "authentic_accuracy": _mean(authentic["predicted"] == AUTHENTIC),
            "n_forged": len(forged),
            "forged_oF1": _mean(forged["score"]),
            "forged_detected": _mean(forged["predicted"] != AUTHENTIC),
        }

    def by_group(self, manifest: pd.DataFrame, column: str) -> pd.DataFrame:
        """Mean score, count and authentic/forged split per value of a manifest column."""
        if column not in manifest.columns:
            raise ScoringError(f"manifest has no column {column!r} (columns: {', '.join(manifest.columns)})")
        table = self.per_row.merge(manifest[["case_id", column]].astype({"case_id": str}), on="case_id", how="left")
        grouped = table.groupby(table[column].fillna("(missing)").astype(str), sort=True)
        return grouped.agg(n=("score", "size"), oF1=("score", "mean")).reset_index()


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")


def score_frames(
    solution: pd.DataFrame,
    submission: pd.DataFrame,
    solution_name: str = "solution",
    submission_name: str = "submission",
) -> ScoreReport:
    """Score a submission against a Kaggle-format solution, rows aligned by ``case_id``."""
    _require_columns(solution, ["case_id", "annotation", "shape"], solution_name)
    _require_columns(submission, ["case_id", "annotation"], submission_name)
    sol = solution.assign(case_id=solution["case_id"].astype(str))
    sub = submission.assign(case_id=submission["case_id"].astype(str))
    _require_unique(sol, solution_name)
    _require_unique(sub, submission_name)
    missing = sorted(set(sol["case_id"]) - set(sub["case_id"]))
    unknown = sorted(set(sub["case_id"]) - set(sol["case_id"]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} case_id(s) of the solution are missing: {_few(missing)}")
    if unknown:
        problems.append(f"{len(unknown)} case_id(s) are not in the solution: {_few(unknown)}")
    if problems:
        raise ScoringError(f"{submission_name}: " + "; ".join(problems))
    predictions = dict(zip(sub["case_id"], sub["annotation"], strict=True))
    records = []
    for case_id, label, shape in zip(sol["case_id"], sol["annotation"], sol["shape"], strict=True):
        prediction = predictions[case_id]
        for value, name, what in ((label, solution_name, "label"), (prediction, submission_name, "annotation")):
            if not isinstance(value, str) or value == "":
                raise ScoringError(
                    f"{name}: case_id {case_id}: empty {what} (an empty cell breaks the whole submission)"
                )
        try:
            score = row_score(label, prediction, shape)
        except RLEError as exc:
            source = solution_name if label != AUTHENTIC and _fails(label) else submission_name
            raise ScoringError(f"{source}: case_id {case_id}: {exc}") from exc
        except ValueError as exc:
            raise ScoringError(f"{solution_name}: case_id {case_id}: {exc}") from exc
        records.append(
            {
                "case_id": case_id,
                "truth": AUTHENTIC if label == AUTHENTIC else "forged",
                "predicted": AUTHENTIC if prediction == AUTHENTIC else "forged",
                "n_true": 0 if label == AUTHENTIC else len(split_instances(label)),
                "n_pred": 0 if prediction == AUTHENTIC else len(split_instances(prediction)),
                "score": score,
            }
        )
    return ScoreReport(
        pd.DataFrame.from_records(records, columns=["case_id", "truth", "predicted", "n_true", "n_pred", "score"])
    )


def _fails(annotation: str) -> bool:
    try:
        for part in split_instances(annotation):
            parse_runs(part)
    except RLEError:
        return True
    return False


def _require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ScoringError(
            f"{name}: missing column(s) {', '.join(absent)} (found: {', '.join(map(str, frame.columns))})"
        )


def _require_unique(frame: pd.DataFrame, name: str) -> None:
    dupes = frame["case_id"][frame["case_id"].duplicated()].unique().tolist()
    if dupes:
        raise ScoringError(f"{name}: {len(dupes)} duplicated case_id(s): {_few(dupes)}")


def _few(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f", … (+{len(ids) - limit} more)" if len(ids) > limit else "")


def read_csv_strict(path: str) -> pd.DataFrame:
    """Read a solution/submission CSV keeping every cell as text (empty cells stay empty strings)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScoringError(f"{path}: cannot read CSV ({exc})") from exc


def score_files(solution_path: str, submission_path: str) -> ScoreReport:
    """Score two CSV files (Kaggle solution format and submission format)."""
    return score_frames(
        read_csv_strict(solution_path), read_csv_strict(submission_path), str(solution_path), str(submission_path)
    )
