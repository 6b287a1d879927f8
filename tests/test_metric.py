import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import metric, rle
from tests import reference_metric as ref

SHAPE = "[720, 960]"


def frames(labels, predictions, shapes=None):
    ids = [str(i) for i in range(len(labels))]
    shapes = shapes or [SHAPE if label != "authentic" else "authentic" for label in labels]
    return (
        pd.DataFrame({"case_id": ids, "annotation": labels, "shape": shapes}),
        pd.DataFrame({"case_id": ids, "annotation": predictions}),
    )


@pytest.mark.parametrize(
    ("labels", "predictions", "expected"),
    [
        (["authentic"] * 3, ["authentic"] * 3, 1.0),
        (["authentic"] * 3, ["[101, 102]"] * 3, 0.0),
        (["[101, 102]"] * 3, ["[101, 102]"] * 3, 1.0),
        (["[101, 103]", "[101, 102]", "[101, 102]"], ["[101, 102]"] * 3, 0.9983739837398374),
        (["[101, 102];[300, 100]", "[101, 102]", "[101, 102]"], ["[101, 102]"] * 3, 0.8333333333333334),
    ],
)
def test_official_reference_values(labels, predictions, expected):
    solution, submission = frames(labels, predictions)
    assert abs(metric.score_frames(solution, submission).score - expected) < 1e-12


@st.composite
def rows(draw):
    height, width = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    n = height * width

    def annotation():
        if draw(st.integers(0, 4)) == 0:
            return "authentic"
        k = draw(st.integers(1, 4))
        flat = [draw(st.lists(st.booleans(), min_size=n, max_size=n)) for _ in range(k)]
        return ";".join(ref.encode(np.array(f).reshape(height, width)) for f in flat)

    return annotation(), annotation(), f"[{height}, {width}]"


@settings(max_examples=1500, deadline=None)
@given(rows())
def test_row_score_agrees_with_brute_force_reference(row):
    assert abs(metric.row_score(*row) - ref.row_score(*row)) < 1e-12


@settings(max_examples=200, deadline=None)
@given(st.lists(rows(), min_size=1, max_size=6))
def test_frame_score_agrees_with_reference_mean(rows_):
    solution, submission = frames([r[0] for r in rows_], [r[1] for r in rows_], [r[2] for r in rows_])
    assert abs(metric.score_frames(solution, submission).score - ref.score(rows_)) < 1e-12


def test_metric_consequences():
    true = np.zeros((10, 10), np.uint8)
    true[2:5, 2:5] = 1
    true[6:9, 6:9] = 1  # source and copy in one operation
    spurious = np.zeros((10, 10), np.uint8)
    spurious[0, 9] = 1
    source, copy = true.copy(), true.copy()
    source[6:, :] = 0
    copy[:6, :] = 0
    assert metric.of1_masks([true], [true]) == 1.0
    assert metric.of1_masks([true, spurious], [true]) == 0.5
    assert metric.of1_masks([true, true], [true]) == 0.5
    assert metric.of1_masks([source, copy], [true]) == pytest.approx(1 / 3, abs=0.01)
    assert metric.of1_masks([], []) == 1.0
    assert metric.of1_masks([], [true]) == 0.0


def test_of1_masks_equals_row_score():
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(5, 40, 2)
        pred = [rng.random((h, w)) < 0.3 for _ in range(rng.integers(1, 4))]
        true = [rng.random((h, w)) < 0.3 for _ in range(rng.integers(1, 4))]
        annotation = rle.encode_instances
        expected = metric.row_score(annotation(true), annotation(pred), f"[{h}, {w}]")
        assert metric.of1_masks(pred, true) == pytest.approx(expected, abs=1e-12)


def test_rows_are_aligned_by_case_id_not_position():
    solution, submission = frames(["authentic", "[1, 2]"], ["authentic", "[1, 2]"])
    assert metric.score_frames(solution, submission.iloc[::-1]).score == 1.0


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda sol, sub: (sol, sub.iloc[:1]), "missing"),
        (lambda sol, sub: (sol, pd.concat([sub, sub.iloc[:1]])), "duplicated"),
        (lambda sol, sub: (sol, sub.assign(case_id=["0", "x"])), "not in the solution"),
        (lambda sol, sub: (pd.concat([sol, sol.iloc[:1]]), sub), "duplicated"),
        (lambda sol, sub: (sol, sub.rename(columns={"annotation": "rle"})), "missing column"),
        (lambda sol, sub: (sol, sub.assign(annotation=["authentic", ""])), "empty annotation"),
        (lambda sol, sub: (sol, sub.assign(annotation=["authentic", "[5, 1, 1, 1]"])), "ascending order"),
        (lambda sol, sub: (sol, sub.assign(annotation=["authentic", "[1, 2];"])), "case_id 1"),
    ],
)
def test_bad_inputs_raise_clear_errors(mutate, needle):
    solution, submission = frames(["authentic", "[1, 2]"], ["authentic", "[1, 2]"])
    solution, submission = mutate(solution, submission)
    with pytest.raises(metric.ScoringError) as info:
        metric.score_frames(solution, submission, "sol.csv", "sub.csv")
    assert needle in str(info.value)


def test_invalid_prediction_on_an_authentic_row_is_never_decoded():
    # the official metric scores the row 0 without decoding the prediction
    solution, submission = frames(["authentic"], ["[5, 1, 1, 1]"])
    assert metric.score_frames(solution, submission).score == 0.0


def test_breakdown_and_groups():
    solution, submission = frames(
        ["authentic", "authentic", "[1, 2]", "[1, 2]"], ["authentic", "[1, 2]", "[1, 2]", "authentic"]
    )
    report = metric.score_frames(solution, submission)
    breakdown = report.breakdown()
    assert breakdown["authentic_accuracy"] == 0.5
    assert breakdown["forged_oF1"] == 0.5
    assert breakdown["forged_detected"] == 0.5
    assert breakdown["oF1"] == 0.5
    manifest = pd.DataFrame({"case_id": ["0", "1", "2", "3"], "family": ["blot", "blot", "blot", "cells"]})
    groups = report.by_group(manifest, "family").set_index("family")
    assert groups.loc["blot", "n"] == 3
    assert groups.loc["blot", "oF1"] == pytest.approx(2 / 3)
    assert groups.loc["cells", "oF1"] == 0.0
    with pytest.raises(metric.ScoringError):
        report.by_group(manifest, "nope")


def test_score_files_reads_empty_cells_as_empty(tmp_path):
    (tmp_path / "sol.csv").write_text('case_id,annotation,shape\n1,"[1, 2]","[3, 3]"\n')
    (tmp_path / "sub.csv").write_text("case_id,annotation\n1,\n")
    with pytest.raises(metric.ScoringError, match="empty annotation"):
        metric.score_files(tmp_path / "sol.csv", tmp_path / "sub.csv")
