"""The report: how each component, plain mean fusion and the stacked ensemble score, and why.

Every number is the exact competition metric at native resolution on out-of-fold predictions
(``shared.metric.score_frames``). The stacked ensemble is scored by nested cross-validation (each
fold with the fusion tuned on the other folds); its in-sample score is shown beside it, labelled.
When a submission for the data root's test split exists and ``solution.csv`` is present, it is scored
too (held-out figures the tuning never saw). Pictures: threshold curves, feature importance,
reliability of P(forged), and a gallery of the worst OOF errors (TP blue, FP yellow, FN purple).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm import tqdm

from ensemble.fusion import FusionConfig, emits_operations, final_instances, fused_instances
from ensemble.meta_model import MetaModel
from ensemble.oof import Component, Sample, load_samples
from ensemble.settings import components_from_params, ensemble_params
from ensemble.worksize import grow_mask, shrink_mask
from shared.config import data_root
from shared.images import load_mask
from shared.logs import setup_logging
from shared.metric import ScoreReport, score_files, score_frames
from shared.overlay import contact_sheet, error_overlay, save_png
from shared.rle import decode_instances, format_annotation
from shared.solution import solution_row

log = logging.getLogger(__name__)
SLICE_COLUMNS = ("family", "compound", "n_ops")


def solution_frame(samples: Sequence[Sample]) -> pd.DataFrame:
    """Kaggle-format solution for the OOF images (ids are uids), from native-size masks."""
    rows = []
    for s in tqdm(samples, desc="solution", disable=None, leave=False):
        masks = load_mask(s.mask_path, s.native_shape) if s.forged else None
        rows.append(solution_row(s.uid, masks, *s.native_shape))
    return pd.DataFrame(rows)


def annotations_from(
    samples: Sequence[Sample],
    instances_of: Callable[[Sample], list[np.ndarray]],
    native_of: Callable[[Sample, list[np.ndarray]], str | None] | None = None,
) -> pd.DataFrame:
    """Submission frame from a function giving work-size instances per sample (grown to native size);
    ``native_of`` may give a sample's native annotation instead (None: use the grown instances)."""
    rows = []
    for s in tqdm(samples, desc="annotate", disable=None, leave=False):
        instances = instances_of(s)
        annotation = native_of(s, instances) if native_of is not None else None
        if annotation is None:
            annotation = format_annotation([grow_mask(m, s.native_shape) for m in instances])
        rows.append({"case_id": s.uid, "annotation": annotation})
    return pd.DataFrame(rows)


def summarise(name: str, report: ScoreReport) -> dict:
    b = report.breakdown()
    return {
        "system": name,
        "oF1": b["oF1"],
        "authentic_accuracy": b["authentic_accuracy"],
        "forged_oF1": b["forged_oF1"],
        "forged_detected": b["forged_detected"],
        "n": b["n_rows"],
    }


def slices(report: ScoreReport, samples: Sequence[Sample], manifest: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Scores per value of the manifest's slicing columns (manifest keyed by case_id, rows by uid)."""
    if manifest is None:
        return {}
    by_uid = pd.DataFrame({"case_id": [s.uid for s in samples], "_case": [s.case_id for s in samples]})
    joined = by_uid.merge(manifest.rename(columns={"case_id": "_case"}), on="_case", how="left").drop(columns="_case")
    return {c: report.by_group(joined, c) for c in SLICE_COLUMNS if c in joined.columns}


def plot_curves(curves: dict, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(curves["pixel_thresholds"], curves["pixel_oF1"], marker="o")
    axes[0].set(xlabel="pixel threshold on the fused map", ylabel="OOF oF1", title="pixel threshold")
    axes[1].plot(curves["p_thresholds"], curves["p_oF1"], marker=".")
    axes[1].set(xlabel="P(forged) threshold", ylabel="OOF oF1", title="image decision")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_importance(meta_dir: Path, out: Path, top: int = 25) -> None:
    model = MetaModel.load(meta_dir)
    gains = pd.Series(model.booster.feature_importance("gain"), index=model.features).sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(gains) + 1))
    ax.barh(gains.index, gains.to_numpy())
    ax.set(xlabel="total gain", title="meta-classifier feature importance")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_reliability(meta_oof: pd.DataFrame, out: Path, bins: int = 10) -> None:
    p, y = meta_oof["p_forged"].to_numpy(), meta_oof["label"].to_numpy()
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    centres = [(p[which == b].mean(), y[which == b].mean()) for b in range(bins) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot(*zip(*centres, strict=True), marker="o")
    ax.set(xlabel="predicted P(forged)", ylabel="observed forged fraction", title="meta-classifier reliability (OOF)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def gallery(
    samples: Sequence[Sample], report: ScoreReport, submission: pd.DataFrame, out: Path, count: int = 18
) -> None:
    """The worst OOF rows with predictions over truth in the shared palette."""
    per_row = report.per_row.set_index("case_id")
    predicted = submission.set_index("case_id")["annotation"]
    worst = per_row[per_row["score"] < 1.0].sort_values("score", kind="stable").head(count)
    by_uid = {s.uid: s for s in samples}
    tiles, captions = [], []
    for uid, row in worst.iterrows():
        s = by_uid[uid]
        shape = s.image.shape[:2]
        pred = np.zeros(shape, bool)
        for m in decode_instances(predicted[uid], s.native_shape):
            pred |= shrink_mask(m, shape)
        truth = np.zeros(shape, bool)
        for m in s.truth:
            truth |= m
        tiles.append(error_overlay(s.image, pred, truth))
        captions.append(f"{uid.split('/', 1)[-1]} {row['truth'][:4]} {row['score']:.2f}")
    if not tiles:
        tiles, captions = [np.full((64, 256, 3), 255, np.uint8)], ["no OOF errors"]
    save_png(out, contact_sheet(tiles, captions, columns=6, cell=220))


def markdown(table: pd.DataFrame, nested: pd.DataFrame, slice_tables: dict, test: dict | None, meta: dict) -> str:
    lines = [
        "# Report",
        "",
        "Exact competition metric (oF1) at native resolution on out-of-fold predictions. The stacked row is",
        "nested cross-validation (fusion tuned on the other folds); the in-sample row reuses the final config",
        "on the images it was tuned on and is optimistic by construction.",
        "",
        table.to_markdown(index=False, floatfmt=".4f"),
        "",
        f"Nested CV per fold: oF1 {nested['oF1'].mean():.4f} ± {nested['oF1'].std(ddof=0):.4f} "
        f"(min {nested['oF1'].min():.4f}, max {nested['oF1'].max():.4f}).",
        "",
        nested.to_markdown(index=False, floatfmt=".4f"),
        "",
        f"Meta-classifier OOF: AUC {meta['oof']['auc']:.4f}, log-loss {meta['oof']['logloss']:.4f}, "
        f"Brier {meta['oof']['brier']:.4f}.",
        "",
    ]
    for column, frame in slice_tables.items():
        lines += [f"## Stacked (nested CV) by {column}", "", frame.to_markdown(index=False, floatfmt=".4f"), ""]
    if test:
        lines += [
            "## Held-out test split (final submission)",
            "",
            pd.DataFrame([test]).to_markdown(index=False, floatfmt=".4f"),
            "",
        ]
    lines += [
        "## Pictures",
        "",
        "![threshold curves](curves.png)",
        "![feature importance](importance.png)",
        "![reliability](reliability.png)",
        "![worst OOF errors: TP blue, FP yellow, FN purple](gallery.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Score components, plain fusion and the stacked ensemble on OOF.")
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--folds", default="artifacts/folds.csv")
    parser.add_argument("--oof-dir", default="artifacts/oof")
    parser.add_argument("--meta-dir", default="artifacts/ensemble/meta")
    parser.add_argument("--fusion-dir", default="artifacts/ensemble/fusion")
    parser.add_argument("--submission", default="artifacts/submission.csv", help="test-split submission to score")
    parser.add_argument("--out", default="artifacts/report")
    parser.add_argument("--metrics", default="artifacts/metrics.json", help="DVC metrics file")
    parser.add_argument("--plots", default="artifacts/plots", help="folder for DVC plot data (CSV)")
    args = parser.parse_args(argv)
    setup_logging()
    settings, components = ensemble_params(), components_from_params()
    root = data_root(args.root)
    out, meta_dir, fusion_dir = Path(args.out), Path(args.meta_dir), Path(args.fusion_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_samples(
        root, args.folds, args.oof_dir, components, settings["work_size"], settings["operations_from"]
    )
    solution = solution_frame(samples)
    meta_oof = pd.read_csv(meta_dir / "meta_oof.csv", dtype={"uid": str}).set_index("uid")
    p = meta_oof.loc[[s.uid for s in samples], "p_forged"].to_numpy(float)
    final = FusionConfig.load(fusion_dir / "fusion.json")
    nested = pd.read_csv(fusion_dir / "nested_cv.csv")
    grids = settings["fusion"]

    systems: list[tuple[str, pd.DataFrame]] = []
    own_annotations: dict[str, str] = {}  # the operations component's native annotations, per uid
    for name in components:
        component = Component.open(Path(args.oof_dir) / name)
        if name == final.operations_from:
            own_annotations = component.instances
        if component.instances:
            frame = pd.DataFrame(
                {"case_id": [s.uid for s in samples], "annotation": [component.instances[s.uid] for s in samples]}
            )
        else:
            alone = FusionConfig(
                {name: 1.0}, 0.5, grids["default_min_area_frac"], 0.0, grids["link_ncc"], final.work_size, None
            )
            frame = annotations_from(samples, lambda s, c=alone: fused_instances(c, s.maps, s.image))
        systems.append((f"{name} alone", frame))
    plain = FusionConfig(
        {c: 1.0 for c in components},
        0.5,
        grids["default_min_area_frac"],
        0.0,
        grids["link_ncc"],
        final.work_size,
        final.operations_from,
    )
    systems.append(
        (
            "plain mean fusion",
            annotations_from(samples, lambda s: fused_instances(plain, s.maps, s.image, s.operations)),
        )
    )
    fold_configs = {
        int(r.fold): FusionConfig(
            json.loads(r.weights),
            r.threshold,
            r.min_area_frac,
            r.p_threshold,
            grids["link_ncc"],
            final.work_size,
            final.operations_from,
            getattr(r, "instances_from", "maps"),
            getattr(r, "p_threshold_operations", 0.0),
        )
        for r in nested.itertuples()
    }
    p_of = dict(zip([s.uid for s in samples], p, strict=True))

    def stacked(config_of: Callable[[Sample], FusionConfig]) -> pd.DataFrame:
        """As prediction emits: the operations component's own instances at native size where they are used."""

        def native_of(s: Sample, instances: list[np.ndarray]) -> str | None:
            return own_annotations[s.uid] if instances and emits_operations(config_of(s), s.operations) else None

        return annotations_from(
            samples, lambda s: final_instances(config_of(s), p_of[s.uid], s.maps, s.image, s.operations), native_of
        )

    nested_frame = stacked(lambda s: fold_configs[s.fold])
    systems.append(("stacked ensemble (nested CV)", nested_frame))
    systems.append(("stacked ensemble (in-sample)", stacked(lambda s: final)))

    reports = {name: score_frames(solution, frame) for name, frame in systems}
    table = pd.DataFrame([summarise(name, r) for name, r in reports.items()])
    manifest_path = root / "manifest.csv"
    manifest = pd.read_csv(manifest_path, dtype={"case_id": str}) if manifest_path.is_file() else None
    nested_report = reports["stacked ensemble (nested CV)"]
    slice_tables = slices(nested_report, samples, manifest)

    test = None
    if Path(args.submission).is_file() and (root / "solution.csv").is_file():
        test_report = score_files(root / "solution.csv", args.submission)
        test = summarise("final submission on the test split", test_report)
        if manifest is not None:
            for column in SLICE_COLUMNS:
                if column in manifest.columns:
                    test_report.by_group(manifest, column).to_csv(out / f"test_by_{column}.csv", index=False)

    curves = json.loads((fusion_dir / "curves.json").read_text())
    plot_curves(curves, out / "curves.png")
    plot_importance(meta_dir, out / "importance.png")
    plot_reliability(meta_oof.reset_index(), out / "reliability.png")
    gallery(samples, nested_report, nested_frame, out / "gallery.png")
    plots = Path(args.plots)
    plots.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"threshold": curves["pixel_thresholds"], "oF1": curves["pixel_oF1"]}).to_csv(
        plots / "pixel_threshold.csv", index=False
    )
    pd.DataFrame({"p_threshold": curves["p_thresholds"], "oF1": curves["p_oF1"]}).to_csv(
        plots / "p_threshold.csv", index=False
    )
    meta_metrics = json.loads((meta_dir / "meta_metrics.json").read_text())
    metrics = {row["system"]: {k: v for k, v in row.items() if k != "system"} for row in table.to_dict("records")}
    metrics["nested_cv_fold_std"] = float(nested["oF1"].std(ddof=0))
    metrics["meta_auc"] = meta_metrics["oof"]["auc"]
    if test:
        metrics["test_split"] = {k: v for k, v in test.items() if k != "system"}
    Path(args.metrics).parent.mkdir(parents=True, exist_ok=True)
    Path(args.metrics).write_text(json.dumps(metrics, indent=2))
    table.to_csv(out / "scores.csv", index=False)
    (out / "report.md").write_text(markdown(table, nested, slice_tables, test, meta_metrics))
    summary = table.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    if test:
        summary += (
            f"\n\nheld-out test split: oF1 {test['oF1']:.4f} (authentic accuracy {test['authentic_accuracy']:.4f}, "
            f"forged oF1 {test['forged_oF1']:.4f})"
        )
    summary += f"\n\nreport: {out / 'report.md'}"
    (out / "summary.txt").write_text(summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
