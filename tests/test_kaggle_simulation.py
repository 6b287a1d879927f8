"""The assembled inference kernel, run as Kaggle would run it: offline, from ``/kaggle/input``.

A real (tiny) stack is fitted first — matcher OOF, a randomly initialised segmenter's OOF maps,
meta-classifier, fusion, bundle — then ``build_inference`` writes the kernel script, which runs in a
subprocess against a temporary tree laid out like ``/kaggle/input`` with every socket refused. The
submission it leaves is validated and scored with the project's own scorer.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ensemble import meta, tune
from ensemble.bundle import assemble
from kaggle_kernels.build import build_inference, kernel_settings
from models.matcher import MatcherParams
from models.matcher.oof import write_oof
from models.segmenter.checkpoints import save_checkpoint
from models.segmenter.config import active_models, model_entry, model_spec
from models.segmenter.infer import load_predictor
from models.segmenter.maps_out import write_maps
from models.segmenter.networks import build_network
from shared.config import REPO_ROOT, load_params
from shared.dataset import discover, labelled_rows
from shared.folds import assign_folds
from shared.metric import score_files
from shared.rle import encode_instances
from shared.submission import validate_submission_file
from tests.conftest import build_kaggle_root, write_png

NO_NETWORK = """\
import socket

def _refuse(*args, **kwargs):
    raise OSError("network access is disabled in this simulated Kaggle kernel")

class _OfflineSocket(socket.socket):
    def connect(self, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse()
        return super().connect(*args, **kwargs)

socket.socket = _OfflineSocket
socket.create_connection = _refuse
"""


def plain_segmenter(params: dict) -> str:
    """The cheapest active segmenter without a self-correlation block (mechanics, not quality)."""
    for name in active_models(params):
        if model_spec(name, model_entry(name, params)).corr is None:
            return name
    return active_models(params)[0]


def copy_moved(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Textured noise with one block copied elsewhere (what the matcher should find)."""
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    image[8:40, 10:42] = image[60:92, 70:102]
    return image


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory) -> tuple[Path, Path, str]:
    """A bundle fitted on a tiny Kaggle-layout root, and the root (whose test split the kernel sees)."""
    tmp = tmp_path_factory.mktemp("kernel")
    root = build_kaggle_root(tmp / "data", n_cases=10)
    rng = np.random.default_rng(3)
    for case_id in ("45", "46"):  # bigger test figures, one with a copy-move the matcher can see
        image = copy_moved(rng, 120, 140) if case_id == "45" else rng.integers(0, 255, (110, 130, 3), np.uint8)
        write_png(root / "test_images" / f"{case_id}.png", image)

    params = copy.deepcopy(load_params())  # the loaded tree is cached and shared: never mutate it
    segmenter = plain_segmenter(params)
    params["ensemble"].update({"components": ["matcher", segmenter], "operations_from": "matcher", "work_size": 128})
    params["ensemble"]["meta"]["lgbm"].update({"n_estimators": 20, "min_child_samples": 3})
    params["ensemble"]["fusion"].update({"weight_step": 0.5, "thresholds": [0.5], "min_area_fracs": [0.001]})
    params["matcher"]["jobs"] = 1
    params["segmenter"]["predict_folds"] = 0  # the bundle holds every fold model (the time-guard levels drop them)
    params_path = tmp / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))

    art = tmp / "artifacts"
    art.mkdir()
    table = discover(root)
    folds = assign_folds(table, 2, 0)
    folds.to_csv(art / "folds.csv", index=False)
    write_oof(root, art / "oof" / "matcher", MatcherParams.from_dict(params["matcher"]), jobs=1)
    spec = model_spec(segmenter, model_entry(segmenter, params))
    rows = labelled_rows(table).merge(folds[["uid", "fold"]], on="uid")
    for fold in (0, 1):
        torch.manual_seed(100 + fold)
        checkpoint = save_checkpoint(
            art / "models" / segmenter / f"fold{fold}", spec, build_network(spec), fold, 1, None, {"tta": "hflip"}
        )
        predictor = load_predictor([checkpoint], tta=True)
        write_maps(predictor, rows[rows["fold"] == fold], art / "oof" / segmenter / f"fold{fold}.npz")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECODAI_PARAMS", str(params_path))
        common = ["--root", str(root), "--folds", str(art / "folds.csv"), "--oof-dir", str(art / "oof")]
        meta.main([*common, "--out", str(art / "meta")])
        tune.main([*common, "--meta", str(art / "meta" / "meta_oof.csv"), "--out", str(art / "fusion")])
        bundle = assemble(art / "bundle", art / "meta", art / "fusion", art / "models")
    return bundle, root, segmenter


def kaggle_input(tmp: Path, bundle: Path, root: Path, settings: dict) -> Path:
    """``/kaggle/input`` as the kernel sees it: competition data, weights dataset, wheels dataset."""
    inputs = tmp / "input"
    competition = inputs / settings["competition"]
    competition.mkdir(parents=True)
    shutil.copytree(root / "test_images", competition / "test_images")
    (competition / "test_images" / "47.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # must not sink the run
    (competition / "sample_submission.csv").write_text("case_id,annotation\n46,authentic\n47,authentic\n45,authentic\n")
    (inputs / settings["weights_dataset"]).symlink_to(bundle, target_is_directory=True)
    (inputs / settings["wheels_dataset"]).mkdir()  # everything is installed here: nothing to install
    return inputs


def run_kernel(tmp: Path, script: Path, inputs: Path, settings: dict) -> subprocess.CompletedProcess:
    offline = tmp / "offline"
    offline.mkdir(exist_ok=True)
    (offline / "sitecustomize.py").write_text(NO_NETWORK)
    env = {
        **os.environ,
        "PYTHONPATH": str(offline),  # sitecustomize refuses every internet socket
        "KAGGLE_INPUT": str(inputs),
        "KAGGLE_WORKING": str(tmp / "working"),
        "RECODAI_KERNEL_SETTINGS": json.dumps(settings),
        "RECODAI_SRC_DIR": str(tmp / "src"),
        "CUDA_VISIBLE_DEVICES": "",
    }
    env.pop("RECODAI_PARAMS", None)
    (tmp / "working").mkdir(exist_ok=True)
    # run outside the repo so nothing but the bundled sources (and installed wheels) can be imported
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp, env=env, timeout=600)


def test_offline_kernel_writes_a_submission_the_scorer_accepts(trained_bundle, tmp_path):
    bundle, root, _ = trained_bundle
    kernel = build_inference(tmp_path / "kernel", load_params(REPO_ROOT / "params.yaml"))
    settings = kernel_settings(load_params(REPO_ROOT / "params.yaml"))
    inputs = kaggle_input(tmp_path, bundle, root, settings)

    run = run_kernel(tmp_path, kernel / "inference.py", inputs, settings)
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert any("47.png" in line and "authentic" in line for line in log.splitlines())  # named in the log
    submission = tmp_path / "working" / "submission.csv"
    problems = validate_submission_file(submission, inputs / settings["competition"] / "test_images")
    assert problems and all("47.png" in p or "case_id 47 " in p for p in problems)  # only the broken image
    rows = pd.read_csv(submission)
    assert list(rows["case_id"].astype(str)) == ["46", "47", "45"]  # sample_submission order
    assert rows.set_index(rows["case_id"].astype(str)).loc["47", "annotation"] == "authentic"
    # worker processes gave exactly what one process predicting figure after figure gives
    from ensemble.predict import Stack, predict_folder

    serial = tmp_path / "serial.csv"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in every worker (one per core): float sums in the same order
    try:
        predict_folder(Stack.from_bundle(bundle).annotate, inputs / settings["competition"] / "test_images", serial)
    finally:
        torch.set_num_threads(threads)
    assert serial.read_bytes() == submission.read_bytes()
    # the bundled sources ran, not the repo checkout
    assert (tmp_path / "src" / "ensemble" / "predict.py").is_file()
    assert (tmp_path / "src" / "models" / "segmenter" / "infer.py").is_file()

    solution = tmp_path / "solution.csv"
    truth = np.zeros((1, 120, 140), np.uint8)
    truth[0, 8:40, 10:42] = truth[0, 60:92, 70:102] = 1
    pd.DataFrame(
        {
            "case_id": ["46", "47", "45"],
            "annotation": ["authentic", "authentic", encode_instances(list(truth))],
            "shape": ["authentic", "authentic", "[120, 140]"],
        }
    ).to_csv(solution, index=False)
    score = score_files(solution, submission)
    assert 0.0 <= score.score <= 1.0 and len(score.per_row) == 3


def test_kernel_always_leaves_a_valid_submission_when_time_runs_out(trained_bundle, tmp_path):
    bundle, root, _ = trained_bundle
    params = load_params(REPO_ROOT / "params.yaml")
    kernel = build_inference(tmp_path / "kernel", params)
    settings = {**kernel_settings(params), "time_budget_s": 0.0}  # no time at all: everything authentic
    inputs = kaggle_input(tmp_path, bundle, root, settings)

    run = run_kernel(tmp_path, kernel / "inference.py", inputs, settings)
    assert run.returncode == 0, run.stderr[-3000:]
    submission = tmp_path / "working" / "submission.csv"
    problems = validate_submission_file(submission, inputs / settings["competition"] / "test_images")
    assert all("47.png" in p or "case_id 47 " in p for p in problems), problems
    assert set(pd.read_csv(submission)["annotation"]) == {"authentic"}


def test_time_guard_levels_trade_tta_and_folds_for_speed(trained_bundle):
    from ensemble.predict import SegmenterRunner, Stack

    bundle, _, segmenter = trained_bundle
    stack = Stack.from_bundle(bundle)
    runner = next(r for r in stack.runners if isinstance(r, SegmenterRunner))
    assert runner.name == segmenter and runner.predictor.tta == ["hflip", "hflip"]  # as the OOF maps were made
    image = copy_moved(np.random.default_rng(5), 120, 140)
    for level, (n_members, tta) in enumerate([(2, "hflip"), (2, "none"), (1, "none"), (1, "none")]):
        stack.set_level(level)
        if level < 3:  # level 3 runs the matcher alone
            assert len(runner.predictor.members) == n_members and set(runner.predictor.tta) == {tta}
        masks, p_forged = stack.predict(image)
        assert 0.0 <= p_forged <= 1.0
        assert all(m.shape == (120, 140) and m.any() for m in masks)


def test_prediction_reuses_the_test_maps_stage_only_when_they_fit_the_bundle(trained_bundle, tmp_path, monkeypatch):
    import ensemble.predict as predict_module
    from ensemble.predict import SegmenterRunner, Stack, predict_folder
    from models.segmenter.test_maps import write_test_maps
    from shared.maps import sources_path

    bundle, root, segmenter = trained_bundle
    maps = tmp_path / "maps"
    write_test_maps(segmenter, root, bundle.parent / "models", maps / f"{segmenter}.npz", evidence_dir=None, n_folds=0)
    computed = predict_folder(Stack.from_bundle(bundle).annotate, root / "test_images", tmp_path / "computed.csv")

    stack = Stack.from_bundle(bundle, maps_dir=maps)
    assert set(stack.cached) == {segmenter}

    def must_not_run(*args, **kwargs):
        raise AssertionError("a segmenter ran although its test maps were given")

    monkeypatch.setattr(SegmenterRunner, "run", must_not_run)
    monkeypatch.setattr(predict_module, "compute_evidence", must_not_run)  # no segmenter runs: no evidence either
    reused = predict_folder(stack.annotate, root / "test_images", tmp_path / "reused.csv")
    assert (tmp_path / "reused.csv").read_bytes() == (tmp_path / "computed.csv").read_bytes()
    assert reused == computed and any(a != "authentic" for a in computed.values())

    # maps made by other checkpoints are never used
    sources = sources_path(maps / f"{segmenter}.npz")
    record = json.loads(sources.read_text())
    record["checkpoints"] = {name: "0" * 64 for name in record["checkpoints"]}
    sources.write_text(json.dumps(record))
    assert Stack.from_bundle(bundle, maps_dir=maps).cached == {}

    # a damaged map file is skipped (the segmenter runs), never fatal
    write_test_maps(segmenter, root, bundle.parent / "models", maps / f"{segmenter}.npz", evidence_dir=None, n_folds=0)
    assert set(Stack.from_bundle(bundle, maps_dir=maps).cached) == {segmenter}
    (maps / f"{segmenter}.npz").write_bytes(b"not a zip file")
    assert Stack.from_bundle(bundle, maps_dir=maps).cached == {}
