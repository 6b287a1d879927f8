"""The matcher bench's JPEG re-save slice: authentic test figures saved once more as JPEG, and which get flagged."""

import cv2
import numpy as np
import pandas as pd

from bench.matcher import jpeg_resaved_authentic
from models.matcher import MatcherParams
from shared.config import param
from tests import matcher_figures as figures


def test_jpeg_resave_slice_reports_the_authentic_figures_the_matcher_flags(tmp_path):
    images = tmp_path / "test_images"
    images.mkdir()
    plain = figures.texture("astronaut", (240, 320), seed=3)
    repeated, _ = figures.copy_region(plain, (30, 40), (70, 80), (140, 200))  # labelled authentic all the same
    forged, _ = figures.copy_region(plain, (20, 20), (60, 60), (150, 230))
    for cid, image in (("11", plain), ("12", repeated), ("13", forged)):
        cv2.imwrite(str(images / f"{cid}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    pd.DataFrame(
        {"case_id": ["11", "12", "13"], "annotation": ["authentic", "authentic", "[1, 5]"], "shape": ["[240, 320]"] * 3}
    ).to_csv(tmp_path / "solution.csv", index=False)
    result = jpeg_resaved_authentic(tmp_path, MatcherParams.from_dict(param("matcher")))
    assert result["n"] == 2  # the forged row is not an authentic figure
    assert result["flagged"] == ["12"]  # an exact repeat survives the re-save; the plain figure stays clean
    assert np.isclose(result["rate"], 0.5)
