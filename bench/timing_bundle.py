"""A prediction bundle with the real structure and random weights, for timing the stack without training.

    python -m bench.timing_bundle OUT [--profile demo|full]

Same components as ``dvc repro bundle`` builds (the matcher and every active segmenter, one
checkpoint per fold of ``folds.ids``, the profile's encoders, input sizes and TTA set), but the
segmenters keep their random initial weights and the meta-classifier and fusion are fitted on a tiny
synthetic root. Speed depends on the architecture, the input policy and the TTA set, not on the weights,
so this measures what the trained stack costs (its predictions mean nothing). ``--profile full`` gives
the Kaggle-GPU models (ConvNeXt-small, 512 px views, flips TTA) to time them on any device.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import tempfile
from pathlib import Path

import torch
import yaml

from ensemble import meta, tune
from ensemble.bundle import assemble
from models.matcher import MatcherParams
from models.matcher.oof import write_oof
from models.segmenter.checkpoints import save_checkpoint
from models.segmenter.config import active_models, model_entry, model_spec, tta_set
from models.segmenter.infer import Member, Predictor
from models.segmenter.maps_out import write_maps
from models.segmenter.networks import build_network
from shared.config import load_params
from shared.dataset import discover, labelled_rows
from shared.folds import assign_folds
from shared.synth.config import load_config
from shared.synth.writer import generate

TIMING_MARK = "TIMING_ONLY"  # file in the bundle: its predictions mean nothing, only its speed does


def build_timing_bundle(
    out: str | Path, profile: str = "demo", n_train: int = 8, seed: int = 0, device: str = "cpu"
) -> Path:
    """Write the bundle to ``out`` (work files in a temporary folder) and return ``out``; ``device`` runs the
    segmenters for the OOF maps the meta-classifier is fitted on."""
    out = Path(out)
    params = copy.deepcopy(load_params())
    params["profile"] = profile
    params["matcher"]["jobs"] = 1
    params["ensemble"]["meta"]["lgbm"].update({"n_estimators": 20, "min_child_samples": 3})
    params["ensemble"]["fusion"].update({"weight_step": 0.5, "thresholds": [0.5], "min_area_fracs": [0.001]})
    folds_ids = list(params["folds"]["ids"])
    with tempfile.TemporaryDirectory(prefix="timing_bundle_") as tmp_name:
        tmp = Path(tmp_name)
        synth = dataclasses.replace(load_config("demo", params), n_train=n_train, n_supplemental=1, n_test=1)
        root = tmp / "data"
        generate(root, synth, workers=1, overwrite=True)
        params_path = tmp / "params.yaml"
        params_path.write_text(yaml.safe_dump(params))
        art = tmp / "artifacts"
        art.mkdir()
        folds = assign_folds(discover(root), len(folds_ids), seed)
        folds.to_csv(art / "folds.csv", index=False)
        write_oof(root, art / "oof" / "matcher", MatcherParams.from_dict(params["matcher"]), jobs=1)
        rows = labelled_rows(discover(root)).merge(folds[["uid", "fold"]], on="uid")
        for name in active_models(params):
            spec = model_spec(name, model_entry(name, params))
            for fold in sorted(set(rows["fold"])):
                torch.manual_seed(seed * 100 + fold)
                network = build_network(spec).to(device).eval()
                meta_info = {"tta": tta_set(params), "profile": profile, "timing_only": True}
                save_checkpoint(art / "models" / name / f"fold{fold}", spec, network, fold, 0, None, meta_info)
                predictor = Predictor([Member(spec, network)], device, global_only=True)  # maps only feed the meta fit
                write_maps(predictor, rows[rows["fold"] == fold], art / "oof" / name / f"fold{fold}.npz")
        previous = os.environ.get("RECODAI_PARAMS")
        os.environ["RECODAI_PARAMS"] = str(params_path)
        try:
            common = ["--root", str(root), "--folds", str(art / "folds.csv"), "--oof-dir", str(art / "oof")]
            meta.main([*common, "--out", str(art / "meta")])
            tune.main([*common, "--meta", str(art / "meta" / "meta_oof.csv"), "--out", str(art / "fusion")])
            bundle = assemble(out, art / "meta", art / "fusion", art / "models")
            (bundle / TIMING_MARK).write_text(f"random-weight timing bundle, {profile} profile structure\n")
            return bundle
        finally:
            if previous is None:
                os.environ.pop("RECODAI_PARAMS", None)
            else:
                os.environ["RECODAI_PARAMS"] = previous


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="bundle folder to write (replaced)")
    parser.add_argument("--profile", choices=["demo", "full"], default="demo")
    args = parser.parse_args(argv)
    from shared.logs import setup_logging

    setup_logging()
    print(f"timing bundle: {build_timing_bundle(args.out, args.profile)}")


if __name__ == "__main__":
    main()
