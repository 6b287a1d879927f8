"""Tune the fusion on OOF to maximise oF1, with nested cross-validation to report an honest score.

Search: component weights on a simplex grid, pixel threshold and minimum region area (as a fraction of
the image) by coordinate ascent, and for every candidate the best P(forged) threshold. Each outer fold
is scored with a config tuned on the other folds only; the spread across folds is reported next to the
final config (tuned on everything), which is written to ``fusion.json`` for prediction.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ensemble.fusion import FusionConfig, fused_instances
from ensemble.oof import Sample, load_samples
from ensemble.settings import components_from_params, ensemble_params
from shared.config import data_root
from shared.logs import setup_logging
from shared.metric import of1_masks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """Map-level choices (everything except the P(forged) threshold)."""

    weights: tuple[tuple[str, float], ...]
    threshold: float
    min_area_frac: float
    source: str = "maps"  # FusionConfig.instances_from

    def config(self, p_threshold: float, link_ncc: float, work_size: int, operations_from: str | None) -> FusionConfig:
        return FusionConfig(
            dict(self.weights),
            self.threshold,
            self.min_area_frac,
            p_threshold,
            link_ncc,
            work_size,
            operations_from,
            self.source,
        )


def simplex(names: Sequence[str], step: float) -> list[tuple[tuple[str, float], ...]]:
    """Every weight vector on the grid ``step`` that sums to 1."""
    units = round(1 / step)
    grid = []
    for combo in itertools.product(range(units + 1), repeat=len(names)):
        if sum(combo) == units:
            grid.append(tuple((n, c / units) for n, c in zip(names, combo, strict=True)))
    return grid


class Evaluator:
    """Per-sample outcome of a candidate (instances found? their oF1), cached across searches."""

    def __init__(self, samples: Sequence[Sample], link_ncc: float, work_size: int, operations_from: str | None):
        self.samples = samples
        self.link_ncc, self.work_size, self.operations_from = link_ncc, work_size, operations_from
        self._cache: dict[Candidate, tuple[np.ndarray, np.ndarray]] = {}

    def outcome(self, candidate: Candidate) -> tuple[np.ndarray, np.ndarray]:
        if candidate not in self._cache:
            config = candidate.config(0.0, self.link_ncc, self.work_size, self.operations_from)
            found = np.zeros(len(self.samples), bool)
            quality = np.zeros(len(self.samples))
            for i, sample in enumerate(self.samples):
                instances = fused_instances(config, sample.maps, sample.image, sample.operations)
                found[i] = bool(instances)
                if instances and sample.forged:
                    quality[i] = of1_masks(instances, sample.truth)
            self._cache[candidate] = (found, quality)
        return self._cache[candidate]


def row_scores(
    found: np.ndarray, quality: np.ndarray, forged: np.ndarray, p: np.ndarray, p_threshold: float
) -> np.ndarray:
    """oF1 of every row when masks are emitted for ``p >= p_threshold`` and instances exist."""
    emit = found & (p >= p_threshold)
    return np.where(forged, np.where(emit, quality, 0.0), np.where(emit, 0.0, 1.0))


def best_p_threshold(
    found: np.ndarray, quality: np.ndarray, forged: np.ndarray, p: np.ndarray, grid: Sequence[float]
) -> tuple[float, float]:
    scores = [row_scores(found, quality, forged, p, t).mean() for t in grid]
    best = int(np.argmax(scores))
    return float(grid[best]), float(scores[best])


def search(
    evaluator: Evaluator, rows: np.ndarray, p: np.ndarray, grids: dict, rounds: int = 2
) -> tuple[Candidate, float, float]:
    """Coordinate ascent over weights, then threshold × area; then the operations component's own
    instances as the alternative source. Returns (candidate, p_threshold, score)."""
    forged = np.array([evaluator.samples[i].forged for i in rows])
    names = sorted(evaluator.samples[0].maps)

    def score(candidate: Candidate) -> tuple[float, float]:
        found, quality = evaluator.outcome(candidate)
        return best_p_threshold(found[rows], quality[rows], forged, p[rows], grids["p_thresholds"])

    weights = tuple((n, 1 / len(names)) for n in names)
    threshold, area = grids["default_threshold"], grids["default_min_area_frac"]
    best: tuple[float, Candidate, float] = (-1.0, Candidate(weights, threshold, area), 0.5)
    for _ in range(rounds):
        for w in simplex(names, grids["weight_step"]):
            pt, value = score(candidate := Candidate(w, best[1].threshold, best[1].min_area_frac))
            if value > best[0] + 1e-12:
                best = (value, candidate, pt)
        for t, a in itertools.product(grids["thresholds"], grids["min_area_fracs"]):
            pt, value = score(candidate := Candidate(best[1].weights, t, a))
            if value > best[0] + 1e-12:
                best = (value, candidate, pt)
    if evaluator.operations_from:
        own = Candidate(best[1].weights, best[1].threshold, best[1].min_area_frac, "operations")
        pt, value = score(own)
        if value > best[0] + 1e-12:
            best = (value, own, pt)
    return best[1], best[2], best[0]


def nested_cv(evaluator: Evaluator, p: np.ndarray, grids: dict) -> pd.DataFrame:
    """Score every outer fold with a config tuned on the other folds."""
    folds = np.array([s.fold for s in evaluator.samples])
    forged = np.array([s.forged for s in evaluator.samples])
    records = []
    for fold in tqdm(sorted(set(folds)), desc="nested CV", disable=None):
        inner, outer = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        candidate, pt, inner_score = search(evaluator, inner, p, grids)
        found, quality = evaluator.outcome(candidate)
        scores = row_scores(found[outer], quality[outer], forged[outer], p[outer], pt)
        records.append(
            {
                "fold": int(fold),
                "n": len(outer),
                "oF1": float(scores.mean()),
                "authentic_accuracy": float(scores[~forged[outer]].mean()) if (~forged[outer]).any() else np.nan,
                "forged_oF1": float(scores[forged[outer]].mean()) if forged[outer].any() else np.nan,
                "inner_oF1": inner_score,
                "threshold": candidate.threshold,
                "min_area_frac": candidate.min_area_frac,
                "p_threshold": pt,
                "instances_from": candidate.source,
                "weights": json.dumps(dict(candidate.weights)),
            }
        )
    return pd.DataFrame(records)


def sweep_curves(evaluator: Evaluator, candidate: Candidate, p: np.ndarray, grids: dict, pt: float) -> dict:
    """oF1 against the pixel threshold (P threshold fixed) and against the P threshold (candidate fixed)."""
    rows = np.arange(len(evaluator.samples))
    forged = np.array([s.forged for s in evaluator.samples])
    pixel = []
    for t in grids["curve_thresholds"]:
        found, quality = evaluator.outcome(Candidate(candidate.weights, t, candidate.min_area_frac, candidate.source))
        pixel.append(float(row_scores(found, quality, forged, p, pt).mean()))
    found, quality = evaluator.outcome(candidate)
    p_grid = list(np.round(np.linspace(0.0, 1.0, 41), 3))
    decision = [float(row_scores(found[rows], quality[rows], forged, p, t).mean()) for t in p_grid]
    return {
        "pixel_thresholds": list(grids["curve_thresholds"]),
        "pixel_oF1": pixel,
        "p_thresholds": p_grid,
        "p_oF1": decision,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tune the fusion on OOF maps and write fusion.json.")
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--folds", default="artifacts/folds.csv")
    parser.add_argument("--oof-dir", default="artifacts/oof")
    parser.add_argument("--meta", default="artifacts/ensemble/meta/meta_oof.csv")
    parser.add_argument("--out", default="artifacts/ensemble/fusion")
    args = parser.parse_args(argv)
    setup_logging()
    settings = ensemble_params()
    grids, components = settings["fusion"], components_from_params()
    samples = load_samples(
        data_root(args.root), args.folds, args.oof_dir, components, settings["work_size"], settings["operations_from"]
    )
    meta = pd.read_csv(args.meta, dtype={"uid": str}).set_index("uid")
    p = meta.loc[[s.uid for s in samples], "p_forged"].to_numpy(float)
    evaluator = Evaluator(samples, grids["link_ncc"], settings["work_size"], settings["operations_from"])
    nested = nested_cv(evaluator, p, grids)
    candidate, pt, score = search(evaluator, np.arange(len(samples)), p, grids)
    config = candidate.config(pt, grids["link_ncc"], settings["work_size"], settings["operations_from"])
    config.tuned_on = {
        "n_images": len(samples),
        "in_sample_oF1": score,
        "nested_cv_oF1_mean": float(nested["oF1"].mean()),
        "nested_cv_oF1_std": float(nested["oF1"].std(ddof=0)),
    }
    out = Path(args.out)
    config.save(out / "fusion.json")
    nested.to_csv(out / "nested_cv.csv", index=False)
    (out / "curves.json").write_text(json.dumps(sweep_curves(evaluator, candidate, p, grids, pt), indent=2))
    log.info("fusion: %s", json.dumps(config.tuned_on))


if __name__ == "__main__":
    main()
