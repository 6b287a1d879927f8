"""LightGBM meta-classifier: P(forged) per image from OOF-derived features, with the project's folds.

Fold k's probabilities come from a model fitted on the other folds only (whose inputs are themselves
out-of-fold maps), then Platt-calibrated with coefficients fitted on an inner grouped split of those
same other folds. The final model (all folds) is saved as a LightGBM text model plus a small JSON
(feature names, calibration), which prediction and the Kaggle kernel load without pickle.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from ensemble.features import all_features
from ensemble.meta_model import EPS, MetaModel, logit
from ensemble.oof import Sample, load_samples
from ensemble.settings import components_from_params, ensemble_params
from shared.config import data_root
from shared.logs import setup_logging

log = logging.getLogger(__name__)


def feature_table(samples: Sequence[Sample]) -> pd.DataFrame:
    """One row of features per sample (index uid), columns in a stable order."""
    rows = {s.uid: all_features(s.image, s.native_shape, s.maps, s.passthrough) for s in samples}
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table[sorted(table.columns)].astype(float)


def _fit_booster(x: pd.DataFrame, y: np.ndarray, params: dict, seed: int) -> lgb.Booster:
    model = lgb.LGBMClassifier(
        **params, random_state=seed, n_jobs=2, verbose=-1, deterministic=True, force_row_wise=True
    )
    model.fit(x, y)
    return model.booster_


def fit_meta(x: pd.DataFrame, y: np.ndarray, groups: np.ndarray, params: dict, seed: int) -> MetaModel:
    """Booster on all rows; Platt coefficients from an inner grouped 3-fold split of the same rows."""
    inner = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=seed)
    raw = np.zeros(len(y))
    for train, valid in inner.split(x, y, groups):
        raw[valid] = _fit_booster(x.iloc[train], y[train], params, seed).predict(x.iloc[valid].to_numpy(np.float64))
    platt = LogisticRegression(C=1.0).fit(logit(raw)[:, None], y)
    booster = _fit_booster(x, y, params, seed)
    return MetaModel(booster, list(x.columns), float(platt.coef_[0, 0]), float(platt.intercept_[0]))


def cross_validate(
    x: pd.DataFrame, y: np.ndarray, folds: np.ndarray, groups: np.ndarray, params: dict, seed: int
) -> tuple[np.ndarray, list[dict]]:
    """Out-of-fold calibrated P(forged) and per-fold metrics."""
    p = np.zeros(len(y))
    per_fold = []
    for fold in sorted(set(folds)):
        train, valid = folds != fold, folds == fold
        model = fit_meta(x[train], y[train], groups[train], params, seed)
        p[valid] = model.predict(x[valid])
        per_fold.append(_metrics(y[valid], p[valid]) | {"fold": int(fold)})
    return p, per_fold


def _metrics(y: np.ndarray, p: np.ndarray) -> dict:
    both = len(set(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "logloss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy@0.5": float(((p >= 0.5) == y).mean()),
        "n": len(y),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit the LightGBM meta-classifier on OOF features.")
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--folds", default="artifacts/folds.csv")
    parser.add_argument("--oof-dir", default="artifacts/oof")
    parser.add_argument("--out", default="artifacts/ensemble/meta")
    args = parser.parse_args(argv)
    setup_logging()
    settings = ensemble_params()
    components = components_from_params()
    samples = load_samples(
        data_root(args.root), args.folds, args.oof_dir, components, settings["work_size"], settings["operations_from"]
    )
    x = feature_table(samples)
    y = np.array([s.forged for s in samples], dtype=int)
    folds = np.array([s.fold for s in samples])
    groups = np.array([s.case_id for s in samples])
    params, seed = dict(settings["meta"]["lgbm"]), int(settings["meta"]["seed"])
    p, per_fold = cross_validate(x, y, folds, groups, params, seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x.to_csv(out / "features.csv", index_label="uid")
    pd.DataFrame({"uid": x.index, "fold": folds, "label": y, "p_forged": p}).to_csv(out / "meta_oof.csv", index=False)
    final = fit_meta(x, y, groups, params, seed)
    final.save(out)
    summary = {"oof": _metrics(y, p), "per_fold": per_fold, "components": components, "n_features": x.shape[1]}
    (out / "meta_metrics.json").write_text(json.dumps(summary, indent=2))
    log.info("meta OOF: %s", json.dumps(summary["oof"]))


if __name__ == "__main__":
    main()
