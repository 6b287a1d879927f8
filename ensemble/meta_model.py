"""The fitted meta-classifier at prediction time: a LightGBM booster plus Platt calibration.

Inference only (lightgbm + numpy + pandas): no scikit-learn, so the Kaggle kernel stays small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, clipped away from 0 and 1."""
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass
class MetaModel:
    """A fitted booster plus Platt calibration ``sigmoid(a * logit(p) + b)``."""

    booster: lgb.Booster
    features: list[str]
    a: float = 1.0
    b: float = 0.0

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Calibrated P(forged) for rows of a feature table (missing features are NaN)."""
        raw = self.booster.predict(table.reindex(columns=self.features).to_numpy(np.float64))
        return 1.0 / (1.0 + np.exp(-(self.a * logit(raw) + self.b)))

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "meta_model.txt"))
        (folder / "meta.json").write_text(json.dumps({"features": self.features, "a": self.a, "b": self.b}, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> MetaModel:
        folder = Path(folder)
        try:
            info = json.loads((folder / "meta.json").read_text())
            booster = lgb.Booster(model_file=str(folder / "meta_model.txt"))
        except (OSError, json.JSONDecodeError, lgb.basic.LightGBMError) as exc:
            raise ValueError(f"{folder}: meta model files unreadable ({exc})") from exc
        return cls(booster, info["features"], info["a"], info["b"])
