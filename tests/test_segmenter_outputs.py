"""What the trained fold models leave behind: test maps, the OOF report with its TTA comparison and
gallery, and ``recodai segment`` pictures — from one tiny 3-fold training shared by these tests."""

import numpy as np
import pandas as pd
import pytest

from models.segmenter.config import active_models, model_entry, model_spec
from models.segmenter.pictures import heat_picture
from models.segmenter.report import write_report
from models.segmenter.test_maps import fold_checkpoints, prediction_checkpoints, write_test_maps
from models.segmenter.train import fit
from shared.cli import main as recodai
from shared.config import REPO_ROOT, load_params
from shared.dataset import load_table
from shared.folds import assign_folds
from shared.maps import MapReader, read_sources
from tests.conftest import build_kaggle_root, write_root_evidence
from tests.test_segmenter_train import tiny_params

PARAMS = load_params(REPO_ROOT / "params.yaml")
# the cheapest active model (no self-correlation) keeps this module fast; the block has its own tests
MODEL = next((m for m in active_models(PARAMS) if not model_spec(m, model_entry(m, PARAMS)).corr), None)
EVIDENCE = "evidence"  # folder of the evidence stage's output, beside the root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if MODEL is None:
        pytest.skip("every active model has a self-correlation block")
    base = tmp_path_factory.mktemp("segmenter")
    root = build_kaggle_root(base / "recodai")
    folds = assign_folds(load_table(root), n_splits=3, seed=0)
    folds.to_csv(base / "folds.csv", index=False)
    write_root_evidence(root, base / EVIDENCE)
    for fold in range(3):
        fit(
            MODEL,
            fold,
            base / "folds.csv",
            root,
            base / "art",
            params=tiny_params(),
            device="cpu",
            evidence_dir=base / EVIDENCE,
        )
    return base, root


def maps_into(trained, folder: str, **options):
    """``write_test_maps`` of the trained fold models into ``art/<folder>`` (options: ``jobs``, ``n_folds``)."""
    base, root = trained
    out = base / "art" / folder / f"{MODEL}.npz"
    return write_test_maps(MODEL, root, base / "art" / "models", out, evidence_dir=base / EVIDENCE, **options)


def test_test_maps_average_the_fold_models_in_submission_order(trained):
    base = trained[0]
    assert len(fold_checkpoints(base / "art" / "models", MODEL)) == 3
    path = maps_into(trained, "test", n_folds=0)
    with MapReader(path) as reader:
        assert reader.uids == ["test/46", "test/45"]  # sample_submission order
        assert reader["test/45"].shape == (30, 40)
    with pytest.raises(FileNotFoundError, match="no fold checkpoints"):
        fold_checkpoints(base / "art" / "models", "absent")

    # two worker processes of one thread each: same rows, same order, maps equal up to float summation order
    parallel = maps_into(trained, "par", jobs=2, n_folds=0)
    with MapReader(path) as serial, MapReader(parallel) as spread:
        assert spread.uids == serial.uids
        for uid in serial.uids:
            assert np.abs(spread.raw(uid).astype(int) - serial.raw(uid).astype(int)).max() <= 1
    assert read_sources(parallel) == read_sources(path)  # the same checkpoints and TTA behind both


def test_prediction_runs_the_first_n_folds_and_says_so(trained):
    base = trained[0]
    models = base / "art" / "models"
    fold_of = {p: p.parent.name for p in fold_checkpoints(models, MODEL)}
    assert [fold_of[p] for p in prediction_checkpoints(models, MODEL, 1)] == ["fold0"]
    assert [fold_of[p] for p in prediction_checkpoints(models, MODEL, 2)] == ["fold0", "fold1"]
    assert prediction_checkpoints(models, MODEL, 0) == prediction_checkpoints(models, MODEL, 5) == list(fold_of)
    with pytest.raises(ValueError, match="predict_folds"):
        prediction_checkpoints(models, MODEL, -1)

    one, every = maps_into(trained, "one", n_folds=1), maps_into(trained, "every", n_folds=0)
    assert len(read_sources(one)["checkpoints"]) == 1  # the cache check of recodai predict sees one model
    with MapReader(one) as single, MapReader(every) as mean:
        assert single.uids == mean.uids
        assert any((single.raw(u) != mean.raw(u)).any() for u in single.uids)  # a different model, a different map


def test_report_scores_every_fold_compares_tta_and_draws_a_gallery(trained, monkeypatch):
    base, root = trained
    monkeypatch.chdir(REPO_ROOT)
    out = base / "report"
    table = write_report([MODEL], root, base / "folds.csv", base / "art" / "oof", base / "art" / "models", out, "hflip")
    assert list(table["fold"]) == [0, 1, 2, "all"]
    assert table.loc[table["fold"] == "all", "n"].item() == table.loc[table["fold"] != "all", "n"].sum()
    assert 0.0 <= table.loc[table["fold"] == "all", "oF1_best_threshold"].item() <= 1.0
    tta = pd.read_csv(out / "tta.csv")
    assert list(tta["tta"]) == ["none", "hflip"] and tta["n"].nunique() == 1
    assert (out / "gallery.png").stat().st_size > 0 and "TTA" in (out / "report.md").read_text()
    assert (out / "losses.png").stat().st_size > 0 and "losses.png" in (out / "report.md").read_text()


def test_segment_command_writes_maps_and_pictures(trained, capsys):
    base, root = trained
    out = base / "segment"
    models_dir = str(base / "art" / "models")
    assert (
        recodai(["segment", str(root / "test_images"), "--model", MODEL, "--models-dir", models_dir, "--out", str(out)])
        == 0
    )
    with MapReader(out / "maps.npz") as reader:
        assert sorted(reader.uids) == ["45", "46"]
    assert (out / "45.png").is_file() and "wrote" in capsys.readouterr().out
    assert recodai(["segment", str(root / "nope.png"), "--model", MODEL, "--out", str(out)]) == 2


def test_heat_picture_is_image_and_heat_side_by_side():
    image = np.zeros((40, 60, 3), np.uint8)
    prob = np.zeros((40, 60), np.float32)
    prob[10:20, 10:30] = 0.9
    picture = heat_picture(image, prob)
    assert picture.shape[0] == 40 and picture.shape[1] > 120
    assert picture[15, 20].any() and not picture[35, 5].any()  # the region is coloured, the rest not
