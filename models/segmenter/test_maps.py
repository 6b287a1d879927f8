"""Test-image probability maps of one segmenter: the mean over its prediction fold models, with their TTA.

    python -m models.segmenter.test_maps --model corr_unet

reads the fold checkpoints that prediction runs (``segmenter.predict_folds``: the first N folds, 0 = all;
see :func:`prediction_checkpoints`) under ``artifacts/models/<model>/fold<k>/`` (never the ``foldall`` fit) and
writes ``artifacts/test/<model>.npz`` (+ index; ``shared.maps`` format, keyed by uid ``test/<case_id>``,
native size, in sample_submission order) and ``<model>.sources.json`` (the checkpoints' sha256 and the TTA
set), so that ``recodai predict --maps`` reuses the maps only when its bundle holds those very checkpoints.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from models.segmenter.checkpoints import NAME_PATTERN, find_checkpoints
from models.segmenter.config import by_profile, section
from models.segmenter.infer import load_predictor
from models.segmenter.maps_out import write_maps, write_maps_parallel
from models.segmenter.networks import set_threads
from shared.config import data_root, load_params
from shared.dataset import Layout, load_table, unlabelled_rows
from shared.evidence_maps import EvidenceStore
from shared.logs import setup_logging
from shared.maps import write_sources

log = logging.getLogger(__name__)


def fold_checkpoints(models_dir: str | Path, model: str) -> list[Path]:
    """The per-fold checkpoints of ``model`` (the fit on everything, ``foldall``, excluded)."""
    paths = [p for p in find_checkpoints(Path(models_dir) / model) if NAME_PATTERN.match(p.name)["fold"] != "all"]
    if not paths:
        raise FileNotFoundError(f"{Path(models_dir) / model}: no fold checkpoints; run the train stages first")
    return paths


def prediction_checkpoints(models_dir: str | Path, model: str, n_folds: int | None = None) -> list[Path]:
    """The fold checkpoints prediction runs: those of the first ``n_folds`` folds by fold id (0: every fold).

    ``n_folds`` defaults to ``segmenter.predict_folds`` of the active profile. One fold model costs a third of
    three and is what made each OOF map, so the fusion tuned on OOF maps sees maps of the same kind.
    """
    if n_folds is None:
        params = load_params()
        n_folds = int(by_profile(section(params).get("predict_folds", 0), params))
    if n_folds < 0:
        raise ValueError(f"segmenter.predict_folds must be >= 0 (0: every fold), got {n_folds}")
    paths = fold_checkpoints(models_dir, model)
    folds = sorted({int(NAME_PATTERN.match(p.name)["fold"]) for p in paths})
    keep = set(folds[:n_folds] if n_folds else folds)
    return [p for p in paths if int(NAME_PATTERN.match(p.name)["fold"]) in keep]


def write_test_maps(
    model: str,
    root: str | Path,
    models_dir: str | Path,
    out: str | Path,
    device: str = "cpu",
    evidence_dir: str | Path | None = "artifacts/evidence",
    jobs: int = 1,
    n_folds: int | None = None,
) -> Path | None:
    """Mean fold-model maps of every test image of ``root``; None when the root has no test images.

    ``jobs`` > 1: that many worker processes of one torch thread each (``write_maps_parallel``);
    ``n_folds``: fold models to average (:func:`prediction_checkpoints`; default ``segmenter.predict_folds``).
    """
    table = load_table(root)
    rows = unlabelled_rows(table, Layout(Path(root)).sample_submission)
    checkpoints = prediction_checkpoints(models_dir, model, n_folds)
    predictor = load_predictor(checkpoints, device=device, tta=True)
    log.info("%s: %d test images, %d fold models, TTA %s", model, len(rows), len(checkpoints), predictor.tta[0])
    evidence = None
    if predictor.evidence_specs and evidence_dir is not None:
        store = EvidenceStore(evidence_dir)
        for spec in predictor.evidence_specs:
            store.check_spec(spec)
        evidence = store.__getitem__
    if jobs > 1:
        path = write_maps_parallel(checkpoints, rows, out, jobs, f"test {model}", device, True, evidence_dir)
    else:
        path = write_maps(predictor, rows, out, f"test {model}", evidence)
    write_sources(path, checkpoints, predictor.tta)  # lets prediction reuse these maps (ensemble.cached_maps)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="entry of segmenter.models in params.yaml")
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--models-dir", default="artifacts/models")
    parser.add_argument("--out", help="map file (default: artifacts/test/<model>.npz)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--evidence", default="artifacts/evidence", help="evidence folder (the evidence stage)")
    parser.add_argument(
        "--jobs", type=int, help="worker processes of one torch thread each (default segmenter.map_jobs; 0: every core)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    set_threads(section().get("threads", 0))
    out = args.out or f"artifacts/test/{args.model}.npz"
    jobs = section().get("map_jobs", 1) if args.jobs is None else args.jobs
    jobs = jobs or len(os.sched_getaffinity(0))
    path = write_test_maps(args.model, data_root(args.root), args.models_dir, out, args.device, args.evidence, jobs)
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
