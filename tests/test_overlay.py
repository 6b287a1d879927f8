import numpy as np

from shared.overlay import FN, FP, TP, contact_sheet, draw_outlines, error_overlay, save_png


def test_error_overlay_palette():
    image = np.zeros((1, 4, 3), np.uint8)
    predicted = np.array([[1, 1, 0, 0]])
    truth = np.array([[1, 0, 1, 0]])
    out = error_overlay(image, predicted, truth, alpha=1.0)
    assert out[0, 0].tolist() == list(TP)
    assert out[0, 1].tolist() == list(FP)
    assert out[0, 2].tolist() == list(FN)
    assert out[0, 3].tolist() == [0, 0, 0]


def test_outlines_and_sheet(tmp_path):
    image = np.full((40, 60, 3), 255, np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 10:30] = 1
    outlined = draw_outlines(image, [mask])
    assert (outlined != 255).any(axis=2).sum() > 0 and not (outlined[15, 20] != 255).any()
    sheet = contact_sheet([outlined, image, image], ["a", "b", "c"], columns=2, cell=64)
    assert sheet.shape == (2 * (64 + 18), 128, 3)
    save_png(tmp_path / "s" / "sheet.png", sheet)
    assert (tmp_path / "s" / "sheet.png").stat().st_size > 0
