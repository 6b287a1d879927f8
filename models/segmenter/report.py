"""Segmenter OOF report: scores per model and fold, the TTA gain, loss curves and a gallery of OOF maps.

Scores use the fixed segmenter-alone rule of ``evaluate.py`` (``segmenter.eval``) plus the
threshold-free pixel AP and image AUC. ``--compare-tta SET`` re-predicts every labelled image with its
fold model under TTA ``none`` and ``SET`` (same weights, same images, global view + tiles) and
reports both, so the gain is exactly what the views add. ``losses.png`` plots each fold model's
training and validation loss per epoch (from its ``metrics.json``): a flat or rising training loss is
a model that does not learn. The gallery shows forged OOF images with TP blue, FP yellow and FN
purple for every model side by side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm import tqdm

from models.segmenter.config import section, tta_set
from models.segmenter.data import EvidenceLookup
from models.segmenter.evaluate import of1_sweep, score_maps
from models.segmenter.infer import Predictor, load_member
from models.segmenter.test_maps import fold_checkpoints
from shared.dataset import labelled_rows, load_table, true_masks
from shared.evidence import compute_evidence
from shared.folds import read_folds
from shared.images import load_image
from shared.maps import MapSet, dequantize, quantize
from shared.overlay import contact_sheet, error_overlay, save_png

METRICS = ("oF1", "authentic_accuracy", "forged_oF1", "pixel_f1", "pixel_ap", "auc")
SWEEP = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def score_table(models: Sequence[str], rows: pd.DataFrame, oof_dir: Path, rule: dict) -> pd.DataFrame:
    """One row per (model, fold) plus ``all``, from the stored OOF maps."""
    records = []
    for model in models:
        maps = MapSet(sorted((oof_dir / model).glob("fold*.npz")))
        maps.check_alignment(rows["uid"])
        for fold in [*sorted(rows["fold"].unique()), "all"]:
            part = rows if fold == "all" else rows[rows["fold"] == fold]
            record = {"model": model, "fold": fold} | score_maps(part, maps.__getitem__, **rule)
            if fold == "all":  # optimistic (threshold picked on the same OOF maps), same for every model
                sweep = of1_sweep(part, maps.__getitem__, SWEEP, rule["min_area_frac"])
                best = max(sweep, key=sweep.get)
                record |= {"oF1_best_threshold": sweep[best], "best_threshold": best}
            records.append(record)
    return pd.DataFrame.from_records(records)


def tta_comparison(
    models: Sequence[str],
    rows: pd.DataFrame,
    models_dir: Path,
    sets: Sequence[str],
    rule: dict,
    device: str = "cpu",
    evidence: EvidenceLookup | None = None,
) -> pd.DataFrame:
    """Every labelled image re-predicted by its fold model under each TTA set; one row per (model, set).

    ``evidence``: precomputed evidence by uid (else computed once per image here, shared by the sets)."""
    records = []
    for model in models:
        maps: dict[str, dict[str, np.ndarray]] = {name: {} for name in sets}
        for path in fold_checkpoints(models_dir, model):
            member = load_member(path, device)
            part = rows[rows["fold"] == int(member.meta["fold"])]
            predictors = {name: Predictor([member], device, tta=name) for name in sets}
            spec = member.spec.evidence
            for _, row in tqdm(part.iterrows(), total=len(part), desc=f"TTA {model} {path.parent.name}", disable=None):
                image = load_image(row["image_path"])
                extra = None
                if spec is not None:
                    extra = evidence(row["uid"]) if evidence is not None else compute_evidence(image, spec)
                for name, predictor in predictors.items():
                    maps[name][row["uid"]] = quantize(predictor.predict(image, extra))
        for name in sets:
            scores = score_maps(rows, lambda uid, m=maps[name]: dequantize(m[uid]), **rule)
            records.append({"model": model, "tta": name} | scores)
    return pd.DataFrame.from_records(records)


def loss_curves(models: Sequence[str], models_dir: Path) -> plt.Figure:
    """Training (solid) and validation (dashed) loss per epoch of every fold model, one panel per model."""
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for metrics_path in sorted((models_dir / model).glob("fold*/metrics.json")):
            history = json.loads(metrics_path.read_text()).get("history", [])
            epochs = [h["epoch"] for h in history]
            line = ax.plot(epochs, [h["loss"] for h in history], marker="o", label=f"{metrics_path.parent.name} train")
            if history and "val_loss" in history[0]:
                ax.plot(epochs, [h["val_loss"] for h in history], ls="--", marker="x", color=line[0].get_color())
        ax.set(title=model, xlabel="epoch", ylabel="loss (solid: train, dashed: validation)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def gallery(models: Sequence[str], rows: pd.DataFrame, oof_dir: Path, threshold: float, n: int = 8) -> np.ndarray:
    """Forged OOF images (evenly spread by uid) with each model's TP/FP/FN overlay."""
    forged = rows[rows["label"] == "forged"].sort_values("uid")
    picked = forged.iloc[:: max(1, len(forged) // n)].head(n)
    sets = {m: MapSet(sorted((oof_dir / m).glob("fold*.npz"))) for m in models}
    tiles, captions = [], []
    for _, row in picked.iterrows():
        image, truth = load_image(row["image_path"]), true_masks(row).max(axis=0)
        tiles.append(error_overlay(image, np.zeros_like(truth), truth))
        captions.append(f"{row['uid']} (truth)")
        for model, maps in sets.items():
            prob = maps[row["uid"]]
            tiles.append(error_overlay(image, prob >= threshold, truth))
            captions.append(f"{model} max {prob.max():.2f}")
    return contact_sheet(tiles, captions, columns=len(models) + 1, cell=220)


def write_report(
    models: Sequence[str],
    root: str | Path,
    folds_csv: str | Path,
    oof_dir: str | Path,
    models_dir: str | Path,
    out: str | Path,
    compare_tta: str | None = None,
    device: str = "cpu",
    evidence: EvidenceLookup | None = None,
) -> pd.DataFrame:
    """Write ``report.md``, ``scores.csv`` (and ``tta.csv``), ``losses.png`` and ``gallery.png`` under ``out``."""
    rule = dict(section()["eval"])
    rows = labelled_rows(load_table(root)).merge(read_folds(folds_csv)[["uid", "fold"]], on="uid")
    table = score_table(models, rows, Path(oof_dir), rule)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "scores.csv", index=False)
    lines = [
        "# Segmenter OOF report",
        "",
        f"Rule: threshold {rule['threshold']}, one instance if at least {rule['min_area_frac']} of the image "
        f"is above it (else authentic). OOF maps made with TTA `{tta_set()}`.",
        "",
        table[["model", "fold", "n", *METRICS]].to_markdown(index=False, floatfmt=".4f"),
        "",
        "Best threshold of the same rule, picked on these OOF maps (optimistic; the ensemble tunes properly):",
        "",
        table[table["fold"] == "all"][["model", "oF1", "oF1_best_threshold", "best_threshold"]].to_markdown(
            index=False, floatfmt=".4f"
        ),
        "",
    ]
    if compare_tta:
        sets = list(dict.fromkeys(["none", compare_tta]))
        tta = tta_comparison(models, rows, Path(models_dir), sets, rule, device, evidence)
        tta.to_csv(out / "tta.csv", index=False)
        lines += ["## TTA (same fold models, re-predicted)", "", tta.to_markdown(index=False, floatfmt=".4f"), ""]
    lines += ["## Loss per epoch", "", "![losses](losses.png)", "", "![gallery](gallery.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    figure = loss_curves(models, Path(models_dir))
    figure.savefig(out / "losses.png", dpi=100)
    plt.close(figure)
    save_png(out / "gallery.png", gallery(models, rows, Path(oof_dir), rule["threshold"]))
    return table
