"""Inference: self-describing checkpoints, tiny and thin images, bad input, no training imports."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from models.segmenter.checkpoints import NAME_PATTERN, find_checkpoints, load_checkpoint, save_checkpoint
from models.segmenter.config import active_models, model_entry, model_spec
from models.segmenter.infer import Member, Predictor, load_predictor
from models.segmenter.networks import build_network
from shared.config import REPO_ROOT, load_params

PARAMS = load_params(REPO_ROOT / "params.yaml")


@pytest.fixture(scope="module")
def active_specs():
    return [model_spec(name, model_entry(name, PARAMS)) for name in active_models(PARAMS)]


@pytest.fixture(scope="module")
def untrained(active_specs):
    torch.manual_seed(0)
    return [Predictor([Member(spec, build_network(spec).eval())], tta="hflip") for spec in active_specs]


@pytest.mark.parametrize("shape", [(7, 5), (20, 30), (64, 1400), (300, 260)])
def test_every_active_model_handles_tiny_thin_and_odd_images(untrained, shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    for predictor in untrained:
        prob = predictor.predict(image)
        name = predictor.members[0].spec.name
        assert prob.shape == shape and prob.dtype == np.float32, name
        assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0, name


def test_grey_input_and_bad_input(untrained):
    predictor = untrained[0]
    assert predictor.predict(np.zeros((40, 50), np.uint8)).shape == (40, 50)
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((40, 50, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        predictor.predict(np.zeros((40, 50, 4), np.uint8))
    with pytest.raises(ValueError, match="at least one"):
        Predictor([])


def test_checkpoint_round_trip_needs_no_params(tmp_path, monkeypatch, active_specs):
    spec = active_specs[0]
    torch.manual_seed(0)
    net = build_network(spec).eval()
    folder = tmp_path / "ckpt"
    first = save_checkpoint(folder, spec, net, fold=2, epoch=3, score=0.41, meta={"train_images": 9})
    path = save_checkpoint(folder, spec, net, fold=2, epoch=7, score=0.5123, meta={"train_images": 9})
    assert not first.exists() and find_checkpoints(tmp_path) == [path]  # older checkpoint of the fold replaced
    match = NAME_PATTERN.match(path.name)
    assert match and match["model"] == spec.name and match["fold"] == "2" and match["epoch"] == "007"
    assert match["score"] == "0.5123" and match["encoder"] == spec.encoder
    checkpoint = load_checkpoint(path)
    assert checkpoint.spec == spec and checkpoint.meta["epoch"] == 7 and checkpoint.meta["train_images"] == 9

    monkeypatch.chdir(tmp_path)  # no params.yaml reachable: the checkpoint alone must suffice
    monkeypatch.setenv("RECODAI_PARAMS", str(tmp_path / "absent.yaml"))
    image = np.random.default_rng(1).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    expected = Predictor([Member(spec, net)]).predict(image)
    predictor = load_predictor([path, path], tta="hflip")
    assert len(predictor.members) == 2 and predictor.members[0].meta["path"] == str(path)
    assert np.allclose(load_predictor(path).predict(image), expected, atol=1e-5)
    assert predictor.predict(image).shape == (90, 70)


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_predictor([tmp_path / "missing.pt"])
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(1)}, junk)
    with pytest.raises(ValueError, match=r"junk\.pt: not a segmenter checkpoint"):
        load_predictor([junk])


def test_inference_modules_import_nothing_training_needs():
    code = (
        "import sys, models.segmenter.infer\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'albumentations', 'dvc', 'lightgbm', 'sklearn'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == ""


def test_stack_computes_evidence_once_per_figure_for_every_segmenter(tmp_path, monkeypatch, active_specs):
    import ensemble.predict as predict_module
    import models.segmenter.infer as infer_module
    from ensemble.predict import SegmenterRunner, Stack

    calls = []
    real = infer_module.compute_evidence

    def counted(image, spec=None):
        calls.append(image.shape)
        return real(image, spec)

    monkeypatch.setattr(infer_module, "compute_evidence", counted)
    monkeypatch.setattr(predict_module, "compute_evidence", counted)
    runners = []
    for spec in active_specs[:2]:
        torch.manual_seed(1)
        paths = [
            save_checkpoint(tmp_path / spec.name / f"fold{k}", spec, build_network(spec).eval(), k, 0, None, {})
            for k in (0, 1)
        ]
        runners.append(SegmenterRunner(spec.name, paths, "cpu", False))
    stack = Stack(runners, meta=None, fusion=None)
    image = np.random.default_rng(2).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    evidence = stack.evidence(image)
    shared = [runner.run(image, evidence).prob for runner in runners]
    assert len(calls) == 1  # two segmenters x two fold models, one evidence computation
    alone = [runner.predictor.predict(image) for runner in runners]  # each computes its own
    assert len(calls) == 3
    for a, b in zip(shared, alone, strict=True):
        assert np.allclose(a, b, atol=1e-6)
