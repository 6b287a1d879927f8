"""One-epoch trainings of every configured model on a tiny Kaggle-layout root, in a temporary folder.

The configuration is the real params.yaml with fewer epochs and smaller inputs, not a toy one.
"""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

import models.segmenter.train as train_module
from models.segmenter.checkpoints import NAME_PATTERN, find_checkpoints, load_checkpoint
from models.segmenter.config import active_models, model_entry, model_spec
from models.segmenter.networks import build_network
from models.segmenter.train import fit
from shared.config import REPO_ROOT, load_params
from shared.dataset import load_table
from shared.folds import assign_folds
from shared.maps import MapReader
from tests.conftest import write_root_evidence


def tiny_params(epochs: int = 1, select: str = "best") -> dict:
    params = copy.deepcopy(load_params(REPO_ROOT / "params.yaml"))
    params["profile"] = "demo"
    params["segmenter"]["tta"] = "hflip"
    params["segmenter"]["device"] = "cpu"
    for entry in params["segmenter"]["models"].values():
        entry["demo"] = entry.get("demo", {}) | {"epochs": epochs, "batch_size": 4, "patience": 5, "select": select}
        entry["demo"]["input"] = entry["demo"].get("input", {}) | {"size": 64, "max_pixels": 64 * 64 * 2}
    return params


@pytest.fixture
def folds_csv(kaggle_root, tmp_path):
    folds = assign_folds(load_table(kaggle_root), n_splits=3, seed=0)
    path = tmp_path / "folds.csv"
    folds.to_csv(path, index=False)
    write_root_evidence(kaggle_root, tmp_path / "evidence")
    return path, folds


ACTIVE = active_models(load_params(REPO_ROOT / "params.yaml"))
PARAMS = load_params(REPO_ROOT / "params.yaml")
REPETITION_AWARE = next(m for m in ACTIVE if model_spec(m, model_entry(m, PARAMS)).evidence is not None)


@pytest.mark.parametrize(
    "model", [m if m == REPETITION_AWARE else pytest.param(m, marks=pytest.mark.slow) for m in ACTIVE]
)
def test_one_epoch_training_writes_checkpoint_and_oof(model, kaggle_root, folds_csv, tmp_path):
    path, folds = folds_csv
    params = tiny_params()
    result = fit(
        model, 0, path, kaggle_root, tmp_path / "art", params=params, device="cpu", evidence_dir=tmp_path / "evidence"
    )

    match = NAME_PATTERN.match(result.checkpoint.name)
    assert match and match["model"] == model and match["fold"] == "0" and match["epoch"] == "000"
    assert result.checkpoint.parent == tmp_path / "art" / "models" / model / "fold0"
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.spec == model_spec(model, model_entry(model, params)) and checkpoint.meta["tta"] == "hflip"
    torch.manual_seed(params["segmenter"]["seed"] * 1000 + 0)  # fit seeds like this (fold 0) before building
    initial = build_network(checkpoint.spec).state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in checkpoint.state_dict.items() if v.is_floating_point())
    assert not (result.checkpoint.parent / "resume.state").exists()

    val = folds[folds["fold"] == 0]
    table = load_table(kaggle_root).set_index("uid")
    with MapReader(result.oof) as reader:
        reader.check_alignment(val["uid"])  # only the held-out fold, every one of its images
        for uid in val["uid"]:
            prob = reader[uid]
            assert prob.shape == (table.loc[uid, "height"], table.loc[uid, "width"])
            assert prob.min() >= 0.0 and prob.max() <= 1.0
    metrics = json.loads((result.checkpoint.parent / "metrics.json").read_text())
    assert metrics["oof"]["n"] == len(val) and len(metrics["history"]) == 1
    assert np.isfinite(metrics["history"][0]["val_loss"])  # the validation-loss curve of the report


def test_fit_on_everything_has_no_oof(kaggle_root, folds_csv, tmp_path):
    path, _ = folds_csv
    full = fit(
        REPETITION_AWARE,
        -1,
        path,
        kaggle_root,
        tmp_path / "art",
        params=tiny_params(),
        device="cpu",
        evidence_dir=tmp_path / "evidence",
    )
    assert NAME_PATTERN.match(full.checkpoint.name)["fold"] == "all" and full.oof is None
    assert "of1-na" in full.checkpoint.name and full.metrics["history"][0]["epoch"] == 0
    assert not (tmp_path / "art" / "oof").exists()


def test_select_last_keeps_the_final_epoch_without_per_epoch_scoring(kaggle_root, folds_csv, tmp_path, monkeypatch):
    path, _ = folds_csv

    def no_validation(*args, **kwargs):
        raise AssertionError("select: last must not score every epoch")

    monkeypatch.setattr(train_module, "validate", no_validation)
    result = fit(
        REPETITION_AWARE,
        0,
        path,
        kaggle_root,
        tmp_path / "art",
        params=tiny_params(epochs=2, select="last"),
        device="cpu",
        evidence_dir=tmp_path / "evidence",
    )
    history = result.metrics["history"]
    assert [h["epoch"] for h in history] == [0, 1] and all(np.isfinite(h["val_loss"]) for h in history)
    assert result.metrics["best_epoch"] == 1 and NAME_PATTERN.match(result.checkpoint.name)["epoch"] == "001"
    assert result.metrics["oof"]["n"] > 0  # the final model is still scored, once, on its OOF maps


def test_unknown_select_rule_is_refused():
    from models.segmenter.config import train_config

    with pytest.raises(ValueError, match="select"):
        train_config({"epochs": 1, "lr": 0.001, "batch_size": 2, "select": "median"})


def test_interrupted_training_resumes(kaggle_root, folds_csv, tmp_path, monkeypatch):
    path, _ = folds_csv
    model = REPETITION_AWARE
    params = tiny_params(epochs=2)
    real_validate, calls = train_module.validate, []

    def crash_on_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(train_module, "validate", crash_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            0,
            path,
            kaggle_root,
            tmp_path / "art",
            params=params,
            device="cpu",
            evidence_dir=tmp_path / "evidence",
        )
    state = tmp_path / "art" / "models" / model / "fold0" / "resume.state"
    assert state.is_file() and not find_checkpoints(tmp_path / "art" / "models")
    first_epoch = torch.load(state, weights_only=True)["history"][0]

    monkeypatch.setattr(train_module, "validate", real_validate)
    result = fit(
        model,
        0,
        path,
        kaggle_root,
        tmp_path / "art",
        params=params,
        resume=True,
        device="cpu",
        evidence_dir=tmp_path / "evidence",
    )
    history = result.metrics["history"]
    assert [h["epoch"] for h in history] == [0, 1] and history[0] == first_epoch
    assert not state.exists()
    assert np.isfinite(history[1]["loss"])


def test_holdout_folds_keep_twins_together_and_need_a_manifest(kaggle_root):
    from models.segmenter.holdout import family_folds

    with pytest.raises(FileNotFoundError, match="manifest"):
        family_folds(kaggle_root, "histology")
    families = {"100": "histology", "101": "histology", "102": "blot", "103": "blot", "104": "em", "105": "em"}
    manifest = pd.DataFrame({"case_id": [*families, "900"], "family": [*families.values(), "blot"]})
    manifest.to_csv(kaggle_root / "manifest.csv", index=False)
    folds = family_folds(kaggle_root, "histology")
    held = folds[folds["fold"] == 0]
    assert sorted(held["uid"]) == sorted(
        f"train/{label}/{c}" for c in ("100", "101") for label in ("authentic", "forged")
    )
    assert set(folds.loc[folds["fold"] == 1, "case_id"]) == {"102", "103", "104", "105", "900"}
    with pytest.raises(ValueError, match="no labelled image of family 'gel'"):
        family_folds(kaggle_root, "gel")
