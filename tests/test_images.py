import numpy as np
import pytest
from PIL import Image

from shared.images import ImageReadError, load_image, load_mask, read_size
from tests.conftest import write_png


def test_rgb_passes_through(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    out = load_image(write_png(tmp_path / "a.png", array))
    np.testing.assert_array_equal(out, array)
    assert read_size(tmp_path / "a.png") == (7, 9)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red
    rgba[0, 1] = [0, 0, 0, 0]  # fully transparent -> white
    rgba[1, 0] = [0, 0, 0, 128]  # half-transparent black -> mid grey
    out = load_image(write_png(tmp_path / "a.png", rgba))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [255, 255, 255]
    assert 120 <= out[1, 0, 0] <= 135


def test_grayscale_and_la(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = load_image(write_png(tmp_path / "g.png", gray))
    assert out.shape == (3, 4, 3) and (out[:, :, 0] == gray).all() and (out[:, :, 2] == gray).all()
    la = np.stack([gray, np.full_like(gray, 255)], axis=2)
    out = load_image(write_png(tmp_path / "la.png", la, "LA"))
    assert (out[:, :, 1] == gray).all()


def test_16_bit_grayscale_is_scaled(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    path = tmp_path / "16.png"
    Image.fromarray(values).save(path)
    out = load_image(path)
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_palette_with_and_without_transparency(tmp_path):
    base = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    base.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    base.save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png")[0, 0].tolist() == [255, 0, 0]
    base.save(tmp_path / "pt.png", transparency=0)
    out = load_image(tmp_path / "pt.png")
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 255]


def test_one_bit(tmp_path):
    Image.fromarray(np.array([[True, False]])).convert("1").save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png")[0].tolist() == [[255, 255, 255], [0, 0, 0]]


def test_truncated_png_names_the_file(tmp_path):
    path = write_png(tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ImageReadError, match=r"t\.png: truncated"):
        load_image(path)


def test_not_an_image_names_the_file(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("hello")
    with pytest.raises(ImageReadError, match=r"x\.png: unreadable"):
        load_image(path)
    with pytest.raises(ImageReadError, match=r"x\.png"):
        read_size(path)


def test_mask_checks(tmp_path):
    good = np.zeros((2, 4, 5), np.uint8)
    good[0, 0, 0] = good[1, 1, 1] = 1
    np.save(tmp_path / "good.npy", good)
    assert load_mask(tmp_path / "good.npy", (4, 5)).shape == (2, 4, 5)
    np.save(tmp_path / "flat.npy", good[0])
    assert load_mask(tmp_path / "flat.npy").shape == (1, 4, 5)
    cases = {
        "shape.npy": (good, "does not match image shape"),
        "values.npy": (good * 255, "not binary"),
        "empty.npy": (np.concatenate([good, np.zeros((1, 4, 5), np.uint8)]), "empty mask channel"),
        "dims.npy": (np.zeros((1, 1, 4, 5), np.uint8), "shape"),
    }
    for name, (array, needle) in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(ImageReadError, match=needle) as info:
            load_mask(tmp_path / name, (4, 4) if name == "shape.npy" else None)
        assert name in str(info.value)
    (tmp_path / "broken.npy").write_bytes(b"nonsense")
    with pytest.raises(ImageReadError, match=r"broken\.npy: unreadable"):
        load_mask(tmp_path / "broken.npy")
