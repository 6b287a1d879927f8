"""The written dataset: exact Kaggle layout, manifest, solution, PNG modes, byte-identical reruns, CLI."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.cli import main as recodai
from shared.dataset import discover, true_masks
from shared.images import load_image
from shared.rle import decode_instances
from shared.synth.config import load_config, scaled_counts
from shared.synth.writer import encode_png, generate
from tests.synth_fixtures import small_config


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("synth") / "synthetic"
    manifest = generate(root, small_config(), workers=1)
    return root, manifest


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_output_passes_the_data_layer_deep_validation(dataset):
    root, _ = dataset
    table = discover(root, deep=True)
    counts = table.groupby(["split", "label"], observed=True).size().to_dict()
    assert counts == {
        ("train", "authentic"): 6,
        ("train", "forged"): 6,
        ("supplemental", "forged"): 2,
        ("test", "unknown"): 8,
    }


def test_case_ids_are_unique_integers_and_twins_share_them(dataset):
    root, manifest = dataset
    assert manifest["case_id"].is_unique
    assert all(cid.isdigit() for cid in manifest["case_id"])
    authentic = {p.stem for p in (root / "train_images" / "authentic").glob("*.png")}
    forged = {p.stem for p in (root / "train_images" / "forged").glob("*.png")}
    assert authentic == forged == set(manifest.loc[manifest["split"] == "train", "case_id"])


def test_manifest_describes_every_case_and_matches_the_masks(dataset):
    root, manifest = dataset
    table = discover(root)
    for _, row in table[table["label"] == "forged"].iterrows():
        entry = manifest.set_index("case_id").loc[row["case_id"]]
        masks = true_masks(row)
        assert masks.shape[0] == entry["n_ops"]
        assert (entry["height"], entry["width"]) == masks.shape[1:]
        assert entry["forged_area_frac"] == pytest.approx(masks.any(axis=0).mean(), abs=1e-5)
    assert set(manifest["split"]) == {"train", "supplemental", "test"}
    for column in ("family", "compound", "transforms", "region_kinds", "hard_negatives", "jpeg", "mode"):
        assert column in manifest.columns


def test_solution_and_sample_submission_cover_the_test_split(dataset):
    root, manifest = dataset
    solution = pd.read_csv(root / "solution.csv", dtype=str, keep_default_na=False)
    sample = pd.read_csv(root / "sample_submission.csv", dtype=str, keep_default_na=False)
    test_ids = {p.stem for p in (root / "test_images").glob("*.png")}
    assert set(solution["case_id"]) == set(sample["case_id"]) == test_ids
    assert (sample["annotation"] == "authentic").all()
    labels = manifest.set_index("case_id")["label"]
    for _, row in solution.iterrows():
        image = load_image(root / "test_images" / f"{row['case_id']}.png")
        if labels[row["case_id"]] == "authentic":
            assert row["annotation"] == row["shape"] == "authentic"
        else:
            assert row["shape"] == f"[{image.shape[0]}, {image.shape[1]}]"
            assert all(m.any() for m in decode_instances(row["annotation"], image.shape[:2]))


def test_twins_differ_only_inside_the_mask_when_no_jpeg(tmp_path):
    config = small_config(n_train=4, n_supplemental=0, n_test=0, max_side=500)
    config = replace(config, jpeg={**config.jpeg, "post_prob": 0.0})  # base JPEG (shared by twins) stays on
    root = tmp_path / "twins"
    manifest = generate(root, config, workers=1)
    table = discover(root)
    checked = 0
    for case_id, entry in manifest.set_index("case_id").iterrows():
        assert entry["jpeg"] == entry["authentic_jpeg"] == 0
        authentic = load_image(root / "train_images" / "authentic" / f"{case_id}.png")
        forged = load_image(root / "train_images" / "forged" / f"{case_id}.png")
        row = table[(table["case_id"] == case_id) & (table["label"] == "forged")].iloc[0]
        inside = true_masks(row).any(axis=0)
        changed = (authentic != forged).any(axis=2)
        assert changed.any() and not (changed & ~inside).any()
        checked += 1
    assert checked == 4


@pytest.mark.parametrize(("mode", "transparent"), [("RGB", False), ("RGBA", False), ("RGBA", True), ("L", False)])
def test_png_modes_decode_back_to_the_same_pixels(tmp_path, mode, transparent):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    gray[:5] = 255  # paper, made transparent in the RGBA case
    image = np.repeat(gray[:, :, None], 3, axis=2) if mode == "L" else rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image[:5] = 255
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(image, mode, transparent))
    assert np.array_equal(load_image(path), image)
    from PIL import Image

    with Image.open(path) as handle:
        assert handle.mode == mode


def test_gray_mode_refuses_a_colour_image():
    image = np.zeros((4, 4, 3), np.uint8)
    image[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match="gray"):
        encode_png(image, "L")


def test_rerun_is_byte_identical_whatever_the_worker_count(dataset, tmp_path):
    root, _ = dataset
    again = tmp_path / "again"
    generate(again, small_config(), workers=2)
    assert _digest(again) == _digest(root)


def test_existing_output_is_refused_without_overwrite(dataset):
    root, _ = dataset
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(root, small_config(), workers=1)


def test_scaled_counts_follow_the_profile_ratios():
    demo = load_config("demo")
    small = scaled_counts(demo, 10)
    assert small.n_train == 10
    assert small.n_test == round(demo.n_test * 10 / demo.n_train)
    assert small.n_supplemental >= 1
    with pytest.raises(ValueError):
        scaled_counts(demo, 0)


def test_cli_writes_dataset_and_preview(tmp_path, capsys):
    out, sheet = tmp_path / "data", tmp_path / "sheet.png"
    assert recodai(["synth", str(out), "--n", "2", "--seed", "5", "--workers", "1", "--preview", str(sheet)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_image(sheet).shape[0] > 100
    assert len(discover(out, deep=True)) >= 6
    assert recodai(["synth", str(out), "--n", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_profiles_resolve_and_overrides_apply():
    demo, full = load_config("demo"), load_config("full")
    assert (demo.n_train, demo.max_side) != (full.n_train, full.max_side)
    assert load_config("demo", seed=9).seed == 9
    with pytest.raises(KeyError, match="profile"):
        load_config("huge")
