import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ensemble import meta, tune
from ensemble.fusion import FusionConfig, final_instances, fused_instances
from ensemble.predict import ComponentOutput, Stack, predict_folder
from tests.conftest import build_kaggle_root
from tests.ensemble_fixtures import shrunk_params, write_fake_components


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    root = build_kaggle_root(tmp / "data", n_cases=18)
    folds, oof = write_fake_components(root, tmp / "artifacts")
    params = shrunk_params(tmp, sources=["maps", "operations"])  # the map weights are what is tested here
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECODAI_PARAMS", str(params))
        common = ["--root", str(root), "--folds", str(folds), "--oof-dir", str(oof)]
        meta.main([*common, "--out", str(tmp / "ensemble")])
        tune.main([*common, "--meta", str(tmp / "ensemble" / "meta_oof.csv"), "--out", str(tmp / "ensemble")])
    return tmp / "ensemble"


def test_meta_is_out_of_fold_and_informative(stacked):
    oof = pd.read_csv(stacked / "meta_oof.csv")
    assert len(oof) == 37 and oof["p_forged"].between(0, 1).all()
    assert set(oof["fold"]) == {0, 1, 2}
    forged, authentic = oof[oof["label"] == 1], oof[oof["label"] == 0]
    assert forged["p_forged"].mean() > authentic["p_forged"].mean() + 0.3
    model = meta.MetaModel.load(stacked)
    features = pd.read_csv(stacked / "features.csv", index_col="uid")
    assert np.allclose(model.predict(features).shape, (37,))
    assert "good_signal" in model.features


def test_fusion_prefers_the_informative_component_and_scores_well(stacked):
    config = FusionConfig.load(stacked / "fusion.json")
    assert config.weights["good"] > config.weights["noisy"]
    nested = pd.read_csv(stacked / "nested_cv.csv")
    assert len(nested) == 3
    assert nested["oF1"].mean() > 0.8
    assert config.tuned_on["nested_cv_oF1_mean"] == pytest.approx(nested["oF1"].mean())
    curves = json.loads((stacked / "curves.json").read_text())
    assert len(curves["pixel_oF1"]) == len(curves["pixel_thresholds"])


def test_fusion_config_round_trip_and_bad_file(tmp_path):
    config = FusionConfig({"a": 0.5, "b": 0.5}, 0.4, 0.002, 0.6)
    config.save(tmp_path / "f.json")
    assert FusionConfig.load(tmp_path / "f.json") == config
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json"):
        FusionConfig.load(tmp_path / "bad.json")


def test_fusion_can_take_the_operations_components_own_instances():
    maps = {"a": np.zeros((40, 40), np.float32)}  # the map sees nothing ...
    first, second, empty = (np.zeros((40, 40), bool) for _ in range(3))
    first[2:8, 2:8] = first[20:26, 20:26] = True  # ... the operations component found two operations
    second[30:35, 2:9] = second[2:7, 30:37] = True
    image = np.zeros((40, 40, 3), np.uint8)
    from_maps = FusionConfig({"a": 1.0}, 0.5, 0.001, 0.5, operations_from="m")
    assert fused_instances(from_maps, maps, image, [first, second, empty]) == []
    own = FusionConfig({"a": 1.0}, 0.5, 0.001, 0.5, operations_from="m", instances_from="operations")
    found = fused_instances(own, maps, image, [first, second, empty])
    assert len(found) == 2 and (found[0] == first).all() and (found[1] == second).all()  # never an empty one
    with pytest.raises(ValueError, match="instances_from"):
        FusionConfig({"a": 1.0}, instances_from="pixels")


def test_operations_or_maps_keeps_the_operations_and_fills_in_from_the_maps_with_its_own_thresholds():
    maps = {"a": np.zeros((40, 40), np.float32)}
    maps["a"][30:36, 30:36] = maps["a"][2:8, 30:36] = 0.9  # the map sees a pair the operations missed
    image = np.zeros((40, 40, 3), np.uint8)
    op = np.zeros((40, 40), bool)
    op[2:8, 2:8] = op[20:26, 20:26] = True
    source = "operations_or_maps"
    config = FusionConfig({"a": 1.0}, 0.5, 0.001, 0.7, operations_from="m", instances_from=source)
    config.p_threshold_operations = 0.1
    kept = final_instances(config, 0.2, maps, image, [op])  # operations: judged by 0.1, not by 0.7
    assert len(kept) == 1 and (kept[0] == op).all()
    assert final_instances(config, 0.05, maps, image, [op]) == []
    assert final_instances(config, 0.5, maps, image, []) == []  # map regions: judged by 0.7
    filled = final_instances(config, 0.8, maps, image, [np.zeros((40, 40), bool)])
    assert len(filled) == 1 and filled[0].sum() == 72 and not (filled[0] & op).any()


def test_tuning_lets_the_maps_fill_in_where_the_operations_missed(tmp_path):
    root = build_kaggle_root(tmp_path / "data", n_cases=18)
    folds, oof = write_fake_components(root, tmp_path / "artifacts", missed_every=2)
    params = shrunk_params(tmp_path, sources=["operations", "operations_or_maps"])
    common = ["--root", str(root), "--folds", str(folds), "--oof-dir", str(oof)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECODAI_PARAMS", str(params))
        meta.main([*common, "--out", str(tmp_path / "ensemble")])
        tune.main([*common, "--meta", str(tmp_path / "ensemble" / "meta_oof.csv"), "--out", str(tmp_path / "ensemble")])
    config = FusionConfig.load(tmp_path / "ensemble" / "fusion.json")
    nested = pd.read_csv(tmp_path / "ensemble" / "nested_cv.csv")
    assert config.instances_from == "operations_or_maps" and (nested["instances_from"] == "operations_or_maps").all()
    assert config.weights["good"] > config.weights["noisy"]
    table = pd.read_csv(folds, dtype={"uid": str})
    own = pd.read_csv(oof / "good" / "instances.csv", dtype={"uid": str}).set_index("uid").loc[table["uid"]]
    forged = (table["label"] == "forged").to_numpy()
    found = (own["annotation"] != "authentic").to_numpy()
    operations_alone = (found[forged].sum() + (~forged).sum()) / len(table)  # its operations are the truth
    assert operations_alone < 0.8
    assert nested["oF1"].mean() > operations_alone + 0.1


class FixedMeta:
    """A meta-classifier that always says the same P(forged)."""

    def __init__(self, p):
        self.p, self.features = p, []

    def predict(self, features):
        return np.full(len(features), self.p)


class TinyCopyRunner:
    """An operations component that found a copy of 2x2 pixels in a 300x300 figure."""

    name = "m"

    def run(self, image, evidence=None):
        op = np.zeros(image.shape[:2], bool)
        op[101:103, 7:9] = op[250:252, 180:182] = True
        return ComponentOutput(op.astype(np.float32), [op, np.zeros_like(op)])


@pytest.mark.parametrize("source", ["operations", "operations_or_maps"])
def test_prediction_emits_the_operations_at_native_size(source):
    config = FusionConfig({"m": 1.0}, 0.5, 0.0, 0.5, work_size=64, operations_from="m", instances_from=source)
    masks, _ = Stack([TinyCopyRunner()], FixedMeta(0.9), config).predict(np.zeros((300, 300, 3), np.uint8))
    assert len(masks) == 1 and masks[0].sum() == 8 and masks[0][101:103, 7:9].all()


class TruthRunner:
    """A fake component that 'sees' the copy-move of the test fixture images (rows/cols 5-15 and 20-30)."""

    def __init__(self, name):
        self.name = name

    def run(self, image, evidence=None):
        prob = np.zeros(image.shape[:2], np.float32)
        if (image[5:15, 5:15] == image[20:30, 20:30]).all():
            prob[5:15, 5:15] = prob[20:30, 20:30] = 0.95
        return ComponentOutput(prob, [prob > 0.5])


def test_predict_folder_writes_a_valid_submission_and_survives_bad_images(stacked, tmp_path, caplog):
    from shared.submission import validate_submission_file

    root = build_kaggle_root(tmp_path / "data", n_cases=3)
    images = root / "train_images" / "forged"
    (images / "broken.png").write_bytes(b"not a png at all")
    features = pd.read_csv(stacked / "features.csv", index_col="uid")
    meta_model = meta.MetaModel.load(stacked)
    config = FusionConfig.load(stacked / "fusion.json")
    stack = Stack([TruthRunner("good"), TruthRunner("noisy")], meta_model, config)
    out = tmp_path / "submission.csv"
    annotations = predict_folder(stack.annotate, images, out)
    assert annotations["broken"] == "authentic"
    assert "broken.png: prediction failed" in caplog.text
    submission = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert submission["case_id"].tolist() == ["100", "101", "102", "broken"]
    assert (submission.set_index("case_id").loc[["100", "101", "102"], "annotation"] != "authentic").all()
    (images / "broken.png").unlink()
    submission[submission["case_id"] != "broken"].to_csv(out, index=False)
    assert validate_submission_file(out, images) == []
    assert len(features.columns) == len(meta_model.features)


def test_time_budget_leaves_the_rest_authentic(tmp_path):
    root = build_kaggle_root(tmp_path / "data", n_cases=3)
    out = tmp_path / "s.csv"
    annotations = predict_folder(lambda path: "[1, 1]", root / "test_images", out, time_budget_s=0.0)
    assert annotations == {}
    assert pd.read_csv(out)["annotation"].tolist() == ["authentic", "authentic"]
    assert pd.read_csv(out)["case_id"].astype(str).tolist() == ["46", "45"]  # sample_submission order


def test_report_scores_every_system_exactly(stacked, tmp_path, capsys):
    from ensemble import report

    tmp = stacked.parent
    params = tmp / "params.yaml"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECODAI_PARAMS", str(params))
        report.main(
            [
                "--root",
                str(tmp / "data"),
                "--folds",
                str(tmp / "artifacts" / "folds.csv"),
                "--oof-dir",
                str(tmp / "artifacts" / "oof"),
                "--meta-dir",
                str(stacked),
                "--fusion-dir",
                str(stacked),
                "--out",
                str(tmp_path),
                "--metrics",
                str(tmp_path / "metrics.json"),
                "--plots",
                str(tmp_path / "plots"),
            ]
        )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # the fake 'good' component proposes exactly the ground truth: its own instances score 1.0 exactly
    assert metrics["good alone"]["oF1"] == 1.0
    assert metrics["noisy alone"]["forged_oF1"] < 0.5
    assert metrics["stacked ensemble (nested CV)"]["oF1"] > 0.8
    for picture in ("curves.png", "importance.png", "reliability.png", "gallery.png"):
        assert (tmp_path / picture).stat().st_size > 1000, picture
    assert "stacked ensemble (nested CV)" in (tmp_path / "report.md").read_text()
    assert "report:" in capsys.readouterr().out


def test_bundle_assembles_everything_prediction_needs(stacked, tmp_path):
    from ensemble.bundle import Bundle, assemble

    models = tmp_path / "models"
    for name in ("good", "noisy"):
        for fold in ("0", "1", "all"):  # the fit on everything (foldall) is not a fold model: left out
            path = models / name / f"fold{fold}" / f"{name}__enc__fold{fold}__ep003__of1-0.500.pt"
            path.parent.mkdir(parents=True)
            path.write_bytes(b"weights")
        (models / name / "fold0" / "resume.pt").write_bytes(b"optimiser state")  # not a checkpoint name
    params = yaml.safe_load((stacked.parent / "params.yaml").read_text())

    def assemble_with(predict_folds: int, out: Path) -> Path:
        params.setdefault("segmenter", {})["predict_folds"] = predict_folds
        path = tmp_path / f"params_{predict_folds}.yaml"  # params are cached per path
        path.write_text(yaml.safe_dump(params))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RECODAI_PARAMS", str(path))
            return assemble(out, stacked, stacked, models)

    fold0, fold1 = "good__enc__fold0__ep003__of1-0.500.pt", "good__enc__fold1__ep003__of1-0.500.pt"
    first = Bundle.open(assemble_with(1, tmp_path / "bundle1"))  # segmenter.predict_folds: the first fold only
    assert [p.name for p in first.segmenters["good"]] == [fold0]
    folder = assemble_with(0, tmp_path / "bundle")  # 0: every fold model
    bundle = Bundle.open(folder)
    assert bundle.components == ["good", "noisy"]
    assert [p.name for p in bundle.segmenters["good"]] == [fold0, fold1]
    assert FusionConfig.load(bundle.fusion_path) == FusionConfig.load(stacked / "fusion.json")
    assert meta.MetaModel.load(folder).features == meta.MetaModel.load(stacked).features
    (folder / "checkpoints" / "good" / fold1).unlink()
    with pytest.raises(FileNotFoundError, match=fold1.replace(".", r"\.")):
        Bundle.open(folder)
    with pytest.raises(FileNotFoundError, match="no fold checkpoints"), pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECODAI_PARAMS", str(stacked.parent / "params.yaml"))
        assemble(tmp_path / "bundle2", stacked, stacked, tmp_path / "nothing")


def test_a_bundle_built_for_another_matcher_version_stops_at_open(tmp_path):
    import copy
    import json

    from ensemble.bundle import BUNDLE_FILE, Bundle
    from models.matcher import MatcherParams
    from shared.config import param

    (tmp_path / BUNDLE_FILE).write_text(json.dumps({"components": ["matcher"], "segmenters": {}}))
    current = param("matcher")
    (tmp_path / "matcher.json").write_text(json.dumps(current))
    assert isinstance(Bundle.open(tmp_path).checked_matcher_params(), MatcherParams)
    stale = copy.deepcopy(current)
    del stale["verify"]["min_samples"]  # a key this version needs, absent from an older bundle
    (tmp_path / "matcher.json").write_text(json.dumps(stale))
    with pytest.raises(ValueError, match=r"matcher\.json: params: missing matcher\.verify\.min_samples.*rebuild"):
        Bundle.open(tmp_path)
