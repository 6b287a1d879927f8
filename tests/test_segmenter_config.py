"""The segmenter registry in params.yaml: profiles, diversity, strictness, and the DVC matrix."""

import copy

import pytest
import yaml

from models.segmenter.config import active_models, model_entry, model_spec, train_config
from shared.config import REPO_ROOT, load_params

PARAMS = load_params(REPO_ROOT / "params.yaml")


@pytest.mark.parametrize("profile", ["demo", "full"])
def test_every_active_model_resolves(profile):
    params = copy.deepcopy(PARAMS) | {"profile": profile}
    specs = [model_spec(name, model_entry(name, params)) for name in active_models(params)]
    for name in active_models(params):
        cfg = train_config(model_entry(name, params))
        assert cfg.epochs > 0 and cfg.lr > 0 and cfg.batch_size > 0 and cfg.loss
    assert len(specs) >= 3
    assert all(spec.evidence is not None for spec in specs), "every model reads the repetition evidence"
    assert len({spec.arch for spec in specs}) == len(specs) >= 3  # diverse architectures


def test_profiles_override_and_merge():
    name = active_models(PARAMS)[0]
    full = model_entry(name, copy.deepcopy(PARAMS) | {"profile": "full"})
    demo = model_entry(name, copy.deepcopy(PARAMS) | {"profile": "demo"})
    assert full["input"]["size"] > demo["input"]["size"]
    assert full["input"]["overlap"] == demo["input"]["overlap"]  # nested blocks merge, not replace


def test_unknown_keys_and_models_fail_loudly():
    params = copy.deepcopy(PARAMS)
    name = active_models(params)[0]
    params["segmenter"]["models"][name]["demo"]["epocs"] = 3
    with pytest.raises(KeyError, match="unknown key"):
        model_entry(name, params)
    with pytest.raises(KeyError, match="no segmenter model 'nope'"):
        model_entry("nope", PARAMS)
    with pytest.raises(ValueError, match="profile"):
        model_entry(name, copy.deepcopy(PARAMS) | {"profile": "huge"})


def test_dvc_train_stage_is_a_model_by_fold_matrix_reading_only_its_model():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    train = stages["train"]
    assert train["matrix"] == {"model": "${segmenter.active}", "fold": "${folds.ids}"}
    assert "segmenter.models.${item.model}" in train["params"]
    assert not any(p == "segmenter" or p == "segmenter.models" for p in train["params"])
    assert "artifacts/oof/${item.model}/fold${item.fold}.npz" in train["outs"]
