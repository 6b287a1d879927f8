"""Tune the fusion on OOF to maximise oF1, with nested cross-validation to report an honest score.

Search: component weights on a simplex grid, pixel threshold and minimum region area (as a fraction of
the image) by coordinate ascent, and for every candidate the best P(forged) threshold(s). The instance
sources listed in ``ensemble.fusion.sources`` compete (see ``ensemble.fusion``); "operations_or_maps"
gets its own coordinate ascent, since its map settings only matter where the operations are empty.
Each outer fold is scored with a config tuned on the other folds only; the spread across folds is
reported next to the final config (tuned on everything), which is written to ``fusion.json`` for prediction.
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

    def config(
        self,
        p_threshold: float,
        link_ncc: float,
        work_size: int,
        operations_from: str | None,
        p_threshold_operations: float = 0.0,
    ) -> FusionConfig:
        return FusionConfig(
            dict(self.weights),
            self.threshold,
            self.min_area_frac,
            p_threshold,
            link_ncc,
            work_size,
            operations_from,
            self.source,
            p_threshold_operations,
        )


OPERATIONS_ONLY = Candidate((), 0.0, 0.0, "operations")  # map settings do not change these instances


@dataclass(frozen=True)
class Outcome:
    """Per sample, before the P(forged) decision: instances found? their oF1 if forged; are they the
    operations component's own (judged by the operations threshold)?"""

    found: np.ndarray
    quality: np.ndarray
    via_operations: np.ndarray


@dataclass(frozen=True)
class Decision:
    """The P(forged) thresholds: for map instances, and for the operations component's own."""

    p_threshold: float
    p_threshold_operations: float = 0.0


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
        self._cache: dict[Candidate, Outcome] = {}

    def outcome(self, candidate: Candidate) -> Outcome:
        if candidate.source == "operations":
            candidate = OPERATIONS_ONLY  # map settings do not change these instances: one outcome serves all
        if candidate not in self._cache:
            if candidate.source == "operations_or_maps":  # composed from the two sources' own outcomes
                own = self.outcome(OPERATIONS_ONLY)
                maps = self.outcome(Candidate(candidate.weights, candidate.threshold, candidate.min_area_frac, "maps"))
                self._cache[candidate] = Outcome(
                    own.found | maps.found, np.where(own.found, own.quality, maps.quality), own.found.copy()
                )
                return self._cache[candidate]
            config = candidate.config(0.0, self.link_ncc, self.work_size, self.operations_from)
            found = np.zeros(len(self.samples), bool)
            quality = np.zeros(len(self.samples))
            for i, sample in enumerate(self.samples):
                instances = fused_instances(config, sample.maps, sample.image, sample.operations)
                found[i] = bool(instances)
                if instances and sample.forged:
                    quality[i] = of1_masks(instances, sample.truth)
            self._cache[candidate] = Outcome(found, quality, np.zeros(len(self.samples), bool))
        return self._cache[candidate]


def row_scores(outcome: Outcome, rows: np.ndarray, forged: np.ndarray, p: np.ndarray, decision: Decision) -> np.ndarray:
    """oF1 of every row in ``rows`` when masks are emitted where instances exist and P(forged) clears
    the threshold that applies to them."""
    threshold = np.where(outcome.via_operations[rows], decision.p_threshold_operations, decision.p_threshold)
    emit = outcome.found[rows] & (p[rows] >= threshold)
    return np.where(forged[rows], np.where(emit, outcome.quality[rows], 0.0), np.where(emit, 0.0, 1.0))


def best_decision(
    outcome: Outcome, rows: np.ndarray, forged: np.ndarray, p: np.ndarray, grids: dict
) -> tuple[Decision, float]:
    """The P(forged) thresholds that score best on ``rows`` (ties: the first on the grids)."""
    operations_grid = grids["p_thresholds_operations"] if outcome.via_operations[rows].any() else [0.0]
    best: tuple[float, Decision] = (-1.0, Decision(grids["p_thresholds"][0]))
    for to in operations_grid:
        for t in grids["p_thresholds"]:
            value = float(row_scores(outcome, rows, forged, p, decision := Decision(float(t), float(to))).mean())
            if value > best[0] + 1e-12:
                best = (value, decision)
    return best[1], best[0]


def search(
    evaluator: Evaluator, rows: np.ndarray, p: np.ndarray, grids: dict, rounds: int = 2
) -> tuple[Candidate, Decision, float]:
    """Per instance source in ``grids["sources"]``: coordinate ascent over weights, then threshold × area
    ("operations" alone takes the best map settings: they do not change its instances). Returns the best
    (candidate, decision, score) over the sources; ties go to the source listed first."""
    forged = np.array([s.forged for s in evaluator.samples])
    names = sorted(evaluator.samples[0].maps)
    sources = [s for s in grids.get("sources", ["maps", "operations"]) if s == "maps" or evaluator.operations_from]

    def score(candidate: Candidate) -> tuple[Decision, float]:
        return best_decision(evaluator.outcome(candidate), rows, forged, p, grids)

    def ascend(source: str) -> tuple[float, Candidate, Decision]:
        weights = tuple((n, 1 / len(names)) for n in names)
        start = Candidate(weights, grids["default_threshold"], grids["default_min_area_frac"], source)
        best: tuple[float, Candidate, Decision] = (-1.0, start, Decision(0.5))
        for _ in range(rounds):
            for w in simplex(names, grids["weight_step"]):
                decision, value = score(candidate := Candidate(w, best[1].threshold, best[1].min_area_frac, source))
                if value > best[0] + 1e-12:
                    best = (value, candidate, decision)
            for t, a in itertools.product(grids["thresholds"], grids["min_area_fracs"]):
                decision, value = score(candidate := Candidate(best[1].weights, t, a, source))
                if value > best[0] + 1e-12:
                    best = (value, candidate, decision)
        return best

    results: list[tuple[float, Candidate, Decision]] = []
    for source in sources:
        if source == "operations":
            continue
        results.append(ascend(source))
    if "operations" in sources:
        # recorded with the best map settings found (they do not change its instances)
        settings = results[0][1] if results else ascend("maps")[1]
        own = Candidate(settings.weights, settings.threshold, settings.min_area_frac, "operations")
        decision, value = score(own)
        results.insert(sources.index("operations"), (value, own, decision))
    best = results[0]
    for result in results[1:]:
        if result[0] > best[0] + 1e-12:
            best = result
    return best[1], best[2], best[0]


def nested_cv(evaluator: Evaluator, p: np.ndarray, grids: dict) -> pd.DataFrame:
    """Score every outer fold with a config tuned on the other folds."""
    folds = np.array([s.fold for s in evaluator.samples])
    forged = np.array([s.forged for s in evaluator.samples])
    records = []
    for fold in tqdm(sorted(set(folds)), desc="nested CV", disable=None):
        inner, outer = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        candidate, decision, inner_score = search(evaluator, inner, p, grids)
        scores = row_scores(evaluator.outcome(candidate), outer, forged, p, decision)
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
                "p_threshold": decision.p_threshold,
                "p_threshold_operations": decision.p_threshold_operations,
                "instances_from": candidate.source,
                "weights": json.dumps(dict(candidate.weights)),
            }
        )
    return pd.DataFrame(records)


def sweep_curves(evaluator: Evaluator, candidate: Candidate, p: np.ndarray, grids: dict, decision: Decision) -> dict:
    """oF1 against the pixel threshold (decision fixed) and against the P(forged) threshold of map
    instances (candidate and the operations threshold fixed)."""
    rows = np.arange(len(evaluator.samples))
    forged = np.array([s.forged for s in evaluator.samples])
    pixel = []
    for t in grids["curve_thresholds"]:
        outcome = evaluator.outcome(Candidate(candidate.weights, t, candidate.min_area_frac, candidate.source))
        pixel.append(float(row_scores(outcome, rows, forged, p, decision).mean()))
    outcome = evaluator.outcome(candidate)
    p_grid = list(np.round(np.linspace(0.0, 1.0, 41), 3))
    along = [Decision(float(t), decision.p_threshold_operations) for t in p_grid]
    return {
        "pixel_thresholds": list(grids["curve_thresholds"]),
        "pixel_oF1": pixel,
        "p_thresholds": p_grid,
        "p_oF1": [float(row_scores(outcome, rows, forged, p, d).mean()) for d in along],
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
    candidate, decision, score = search(evaluator, np.arange(len(samples)), p, grids)
    config = candidate.config(
        decision.p_threshold,
        grids["link_ncc"],
        settings["work_size"],
        settings["operations_from"],
        decision.p_threshold_operations,
    )
    config.tuned_on = {
        "n_images": len(samples),
        "in_sample_oF1": score,
        "nested_cv_oF1_mean": float(nested["oF1"].mean()),
        "nested_cv_oF1_std": float(nested["oF1"].std(ddof=0)),
    }
    out = Path(args.out)
    config.save(out / "fusion.json")
    nested.to_csv(out / "nested_cv.csv", index=False)
    (out / "curves.json").write_text(json.dumps(sweep_curves(evaluator, candidate, p, grids, decision), indent=2))
    log.info("fusion: %s", json.dumps(config.tuned_on))


if __name__ == "__main__":
    main()
