"""Score probability maps the way the competition would, with the simplest segmenter-alone rule.

Rule (a fixed yardstick for comparing models, not the ensemble's tuned decision): binarise at
``threshold``; if the forged area is at least ``min_area_frac`` of the image, predict one instance
(the union), else ``authentic``. Also reported: pixel F1 on forged images (threshold-dependent
quality of the masks) and image-level ROC AUC of the map maximum (threshold-free detection).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

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
    records = []
    for _, row in rows.iterrows():
        prob = get_map(row["uid"])
        truth = true_masks(row)
        if prob.shape != truth.shape[1:]:
            raise ValueError(f"{row['uid']}: map shape {prob.shape} != image shape {truth.shape[1:]}")
        pred = instances_from_map(prob, threshold, min_area_frac)
        forged = len(truth) > 0
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
    return summarize(table)


def summarize(table: pd.DataFrame) -> dict[str, float]:
    forged, authentic = table[table["forged"]], table[~table["forged"]]
    both = forged.size and authentic.size
    return {
        "n": len(table),
        "oF1": float(table["of1"].mean()) if len(table) else float("nan"),
        "authentic_accuracy": float((~authentic["predicted_forged"]).mean()) if len(authentic) else float("nan"),
        "forged_oF1": float(forged["of1"].mean()) if len(forged) else float("nan"),
        "pixel_f1": float(forged["pixel_f1"].mean()) if len(forged) else float("nan"),
        "auc": float(roc_auc_score(table["forged"], table["max_prob"])) if both else float("nan"),
    }
