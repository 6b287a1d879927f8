"""Fake component outputs for ensemble tests: a map that knows the truth and one that is noise."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from shared.dataset import discover, true_masks
from shared.folds import assign_folds
from shared.maps import MapWriter
from shared.rle import encode_instances


def write_fake_components(root: Path, out: Path, seed: int = 0, missed_every: int = 0) -> tuple[Path, Path]:
    """``folds.csv`` and ``oof/{good,noisy}`` for every labelled image of ``root``; ``good``'s operations are the
    truth, except on every ``missed_every``-th forged image (0: none), where it found none."""
    rng = np.random.default_rng(seed)
    table = discover(root)
    folds = assign_folds(table, 3, 0)
    folds_path = out / "folds.csv"
    folds_path.parent.mkdir(parents=True, exist_ok=True)
    folds.to_csv(folds_path, index=False)
    rows = table.set_index("uid").loc[folds["uid"]]
    oof = out / "oof"
    instances, n_forged = [], 0
    with MapWriter(oof / "good" / "all.npz") as good, MapWriter(oof / "noisy" / "all.npz") as noisy:
        for uid, row in rows.iterrows():
            shape = (int(row["height"]), int(row["width"]))
            truth = true_masks(row).max(axis=0) if row["label"] == "forged" else np.zeros(shape, np.uint8)
            soft = cv2.GaussianBlur(truth.astype(np.float32), (3, 3), 0)
            good.add(uid, np.clip(0.9 * soft + 0.05 * rng.random(shape), 0, 1))
            noisy.add(uid, rng.random(shape) * 0.6)
            n_forged += row["label"] == "forged"
            missed = row["label"] != "forged" or (missed_every and n_forged % missed_every == 0)
            annotation = "authentic" if missed else encode_instances(list(true_masks(row)))
            instances.append({"uid": uid, "annotation": annotation})
    pd.DataFrame(instances).to_csv(oof / "good" / "instances.csv", index=False)
    pd.DataFrame({"uid": list(rows.index), "good_signal": [float(lbl == "forged") for lbl in rows["label"]]}).to_csv(
        oof / "good" / "features.csv", index=False
    )
    return folds_path, oof


def shrunk_params(tmp: Path, sources: list[str] | None = None, **ensemble_overrides) -> Path:
    """The real params.yaml with the ensemble pointed at the fake components and a small search."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["ensemble"].update({"components": ["good", "noisy"], "operations_from": "good", "work_size": 128})
    params["ensemble"]["meta"]["lgbm"].update({"n_estimators": 30, "min_child_samples": 3})
    params["ensemble"]["fusion"].update({"weight_step": 0.5, "thresholds": [0.3, 0.5], "min_area_fracs": [0.001]})
    if sources is not None:
        params["ensemble"]["fusion"]["sources"] = sources
    params["ensemble"].update(ensemble_overrides)
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path
