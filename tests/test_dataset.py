import numpy as np
import pytest

from shared.dataset import DataLayoutError, discover, labelled_rows, true_masks, unlabelled_rows
from tests.conftest import write_png


def test_discover_builds_the_typed_table(kaggle_root):
    table = discover(kaggle_root)
    assert list(table.columns) == [
        "uid",
        "case_id",
        "split",
        "label",
        "image_path",
        "mask_path",
        "height",
        "width",
        "n_instances",
    ]
    counts = table.groupby(["split", "label"], observed=True).size().to_dict()
    assert counts == {
        ("train", "authentic"): 6,
        ("train", "forged"): 6,
        ("supplemental", "forged"): 1,
        ("test", "unknown"): 2,
    }
    assert table["uid"].is_unique
    supplemental = table[table["split"] == "supplemental"].iloc[0]
    assert supplemental["n_instances"] == 2 and (supplemental["height"], supplemental["width"]) == (50, 60)
    assert (table.loc[table["label"] == "authentic", "n_instances"] == 0).all()
    assert str(table["height"].dtype) == "int64"
    assert len(labelled_rows(table)) == 13
    assert unlabelled_rows(table, kaggle_root / "sample_submission.csv")["case_id"].tolist() == ["46", "45"]
    forged = table[(table["label"] == "forged") & (table["split"] == "train")].iloc[0]
    assert true_masks(forged).shape == (1, forged["height"], forged["width"])
    authentic = table[table["label"] == "authentic"].iloc[0]
    assert true_masks(authentic).shape[0] == 0


def test_deep_discovery_matches_header_discovery(kaggle_root):
    assert discover(kaggle_root, deep=True).equals(discover(kaggle_root))


def _problem(kaggle_root, deep=False):
    with pytest.raises(DataLayoutError) as info:
        discover(kaggle_root, deep=deep)
    return str(info.value)


def test_forged_image_without_mask(kaggle_root):
    (kaggle_root / "train_masks" / "101.npy").unlink()
    message = _problem(kaggle_root)
    assert "forged" in message and "101.png: forged image without mask" in message


def test_mask_shape_mismatch(kaggle_root):
    np.save(kaggle_root / "train_masks" / "102.npy", np.ones((1, 3, 3), np.uint8))
    assert "102.npy: mask shape (3, 3) does not match image shape" in _problem(kaggle_root)


def test_non_binary_and_empty_masks_in_deep_mode(kaggle_root):
    h, w = np.load(kaggle_root / "train_masks" / "103.npy").shape[1:]
    np.save(kaggle_root / "train_masks" / "103.npy", np.full((1, h, w), 7, np.uint8))
    h, w = np.load(kaggle_root / "train_masks" / "104.npy").shape[1:]
    np.save(kaggle_root / "train_masks" / "104.npy", np.zeros((1, h, w), np.uint8))
    message = _problem(kaggle_root, deep=True)
    assert "103.npy: mask is not binary" in message
    assert "104.npy: empty mask channel" in message


def test_unreadable_and_truncated_png(kaggle_root):
    (kaggle_root / "test_images" / "45.png").write_text("not a png")
    path = kaggle_root / "train_images" / "authentic" / "100.png"
    path.write_bytes(path.read_bytes()[:-100])
    assert "45.png: unreadable image" in _problem(kaggle_root)
    assert "100.png: truncated" in _problem(kaggle_root, deep=True)


def test_duplicate_case_ids(kaggle_root):
    write_png(kaggle_root / "test_images" / "45.PNG", np.zeros((5, 5, 3), np.uint8))
    write_png(kaggle_root / "supplemental_images" / "101.png", np.zeros((5, 5, 3), np.uint8))
    np.save(kaggle_root / "supplemental_masks" / "101.npy", np.ones((1, 5, 5), np.uint8))
    message = _problem(kaggle_root)
    assert "duplicate case_id 'test/45'" in message
    assert "101.png: duplicate case_id '101'" in message


def test_warn_mode_drops_bad_rows_and_keeps_the_rest(kaggle_root, caplog):
    (kaggle_root / "train_masks" / "101.npy").unlink()
    table = discover(kaggle_root, errors="warn")
    assert "train/forged/101" not in set(table["uid"])
    assert len(table) == 14
    assert "forged image without mask" in caplog.text


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(DataLayoutError, match="no images"):
        discover(tmp_path)
