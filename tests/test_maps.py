import numpy as np
import pytest

from shared.maps import MapReader, MapSet, MapWriter, dequantize, index_path, mean_maps, quantize


def test_round_trip_is_exact_to_quantisation(tmp_path):
    rng = np.random.default_rng(0)
    maps = {f"train/forged/{i}": rng.random((rng.integers(1, 50), rng.integers(1, 50))) for i in range(5)}
    with MapWriter(tmp_path / "fold0.npz") as writer:
        for uid, prob in maps.items():
            writer.add(uid, prob)
    assert index_path(tmp_path / "fold0.npz").is_file()
    with MapReader(tmp_path / "fold0.npz") as reader:
        assert reader.uids == list(maps)
        for uid, prob in maps.items():
            assert reader.raw(uid).dtype == np.uint8
            assert np.abs(reader[uid] - prob).max() <= 0.5 / 255 + 1e-6
        reader.check_alignment(maps)
        with pytest.raises(ValueError, match="missing 1"):
            reader.check_alignment([*maps, "train/forged/99"])
        with pytest.raises(KeyError, match="no map"):
            reader["nope"]


def test_quantize_edges():
    assert quantize(np.array([-1.0, 0.0, 0.5, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]
    assert dequantize(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]


def test_writer_rejects_duplicates_and_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(ValueError, match="twice"), MapWriter(path) as writer:
        writer.add("a", np.zeros((2, 2)))
        writer.add("a", np.zeros((2, 2)))
    assert not path.exists()


def test_map_set_and_mean(tmp_path):
    for fold in range(2):
        with MapWriter(tmp_path / f"f{fold}.npz") as writer:
            writer.add(f"u{fold}", np.full((3, 3), 0.2 * (fold + 1)))
            writer.add("shared_test", np.full((3, 3), fold * 1.0))
    with pytest.raises(ValueError, match="in both"):
        MapSet([tmp_path / "f0.npz", tmp_path / "f1.npz"])
    assert np.allclose(mean_maps([tmp_path / "f0.npz", tmp_path / "f1.npz"], "shared_test"), 0.5)
    with pytest.raises(FileNotFoundError):
        MapReader(tmp_path / "absent.npz")
