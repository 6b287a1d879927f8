"""Score probability maps the way the competition would, with the simplest segmenter-alone rule.

Rule (a fixed yardstick for comparing models, not the ensemble's tuned decision): binarise at
``threshold``; if the forged area is at least ``min_area_frac`` of the image, predict one instance
(the union), else ``authentic``. Also reported: pixel F1 on forged images (threshold-dependent
quality of the masks), pixel average precision over all images (threshold-free localisation, on
every 4th pixel in each direction) and image-level ROC AUC of the map maximum (threshold-free
detection).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from shared.dataset import true_masks
from shared.metric import of1_masks


def instances_from_map(prob: np.ndarray, threshold: float, min_area_frac: float) -> list[np.ndarray]:
    """Zero or one instance: the pixels above ``threshold`` when they cover enough of the image."""
    binary = prob >= threshold
    return [binary] if binary.mean() >= min_area_frac and binary.any() else []


def pixel_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.logical_and(pred, truth).sum())
    denom = float(pred.sum() + truth.sum())
    return 2 * tp / denom if denom else 0.0


def score_maps(
    rows: pd.DataFrame, get_map: Callable[[str], np.ndarray], threshold: float, min_area_frac: float
) -> dict[str, float]:
    """oF1, authentic accuracy, forged-row oF1, forged pixel F1 and image AUC over ``rows``."""
    records, pixel_scores, pixel_truth = [], [], []
    for _, row in rows.iterrows():
        prob = get_map(row["uid"])
        truth = true_masks(row)
        if prob.shape != truth.shape[1:]:
            raise ValueError(f"{row['uid']}: map shape {prob.shape} != image shape {truth.shape[1:]}")
        pred = instances_from_map(prob, threshold, min_area_frac)
        forged = len(truth) > 0
        union = truth.max(axis=0) if forged else np.zeros(prob.shape, np.uint8)
        pixel_scores.append(prob[::4, ::4].ravel())
        pixel_truth.append(union[::4, ::4].ravel())
        records.append(
            {
                "uid": row["uid"],
                "forged": forged,
                "of1": of1_masks(pred, list(truth)),
                "predicted_forged": bool(pred),
                "pixel_f1": pixel_f1(prob >= threshold, truth.max(axis=0)) if forged else np.nan,
                "max_prob": float(prob.max()),
            }
        )
    table = pd.DataFrame.from_records(records)
    truth = np.concatenate(pixel_truth) if pixel_truth else np.zeros(0)
    ap = average_precision_score(truth, np.concatenate(pixel_scores)) if truth.any() else float("nan")
    return summarize(table) | {"pixel_ap": float(ap)}


def of1_sweep(
    rows: pd.DataFrame, get_map: Callable[[str], np.ndarray], thresholds: list[float], min_area_frac: float
) -> dict[float, float]:
    """oF1 of the same rule at several thresholds (how much a tuned threshold would change the picture)."""
    totals = dict.fromkeys(thresholds, 0.0)
    for _, row in rows.iterrows():
        prob, truth = get_map(row["uid"]), list(true_masks(row))
        for threshold in thresholds:
            totals[threshold] += of1_masks(instances_from_map(prob, threshold, min_area_frac), truth)
    return {t: v / max(1, len(rows)) for t, v in totals.items()}


def summarize(table: pd.DataFrame) -> dict[str, float]:
    forged, authentic = table[table["forged"]], table[~table["forged"]]
    both = len(forged) and len(authentic)
    return {
        "n": len(table),
        "oF1": float(table["of1"].mean()) if len(table) else float("nan"),
        "authentic_accuracy": float((~authentic["predicted_forged"]).mean()) if len(authentic) else float("nan"),
        "forged_oF1": float(forged["of1"].mean()) if len(forged) else float("nan"),
        "pixel_f1": float(forged["pixel_f1"].mean()) if len(forged) else float("nan"),
        "auc": float(roc_auc_score(table["forged"], table["max_prob"])) if both else float("nan"),
    }
