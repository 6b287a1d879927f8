import pandas as pd
import pytest

from shared.dataset import discover
from shared.folds import assign_folds, main, read_folds


def test_twins_share_a_fold_and_labels_are_stratified(kaggle_root):
    folds = assign_folds(discover(kaggle_root), n_splits=3, seed=0)
    assert set(folds["fold"]) == {0, 1, 2}
    assert (folds.groupby("case_id")["fold"].nunique() == 1).all()
    per_fold = folds.groupby(["fold", "label"]).size().unstack(fill_value=0)
    assert (per_fold["authentic"] >= 1).all() and (per_fold["forged"] >= 1).all()
    assert "test" not in set(folds["split"])


def test_folds_are_deterministic_and_seeded(kaggle_root):
    table = discover(kaggle_root)
    a, b = assign_folds(table, 3, 0), assign_folds(table, 3, 0)
    pd.testing.assert_frame_equal(a, b)


def test_too_few_groups(kaggle_root):
    with pytest.raises(ValueError, match="cannot fill"):
        assign_folds(discover(kaggle_root), n_splits=50, seed=0)


def test_main_writes_csv(kaggle_root, tmp_path):
    out = tmp_path / "folds.csv"
    main(["--root", str(kaggle_root), "--out", str(out)])
    folds = read_folds(out)
    assert len(folds) == 13 and folds["uid"].is_unique
