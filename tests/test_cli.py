import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.cli import main
from shared.rle import encode
from shared.solution import make_solution
from tests.conftest import write_png


@pytest.fixture
def scored_pair(tmp_path):
    solution = tmp_path / "solution.csv"
    submission = tmp_path / "submission.csv"
    solution.write_text('case_id,annotation,shape\n1,"[101, 102]","[720, 960]"\n2,authentic,authentic\n')
    submission.write_text('case_id,annotation\n2,authentic\n1,"[101, 102]"\n')
    return solution, submission


def test_score_prints_the_score_last(scored_pair, tmp_path, capsys):
    solution, submission = scored_pair
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("case_id,family\n1,blot\n2,cells\n")
    per_row = tmp_path / "rows.csv"
    assert main(["score", str(solution), str(submission), "--per-row", str(per_row), "--groups", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "oF1 1.000000"
    assert "by family" in out and "blot" in out
    assert pd.read_csv(per_row)["score"].tolist() == [1.0, 1.0]


def test_score_error_is_one_clear_line(scored_pair, tmp_path, capsys):
    solution, _ = scored_pair
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,annotation\n1,authentic\n")
    assert main(["score", str(solution), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "missing" in err and "Traceback" not in err


def test_console_script_is_installed(scored_pair):
    solution, submission = scored_pair
    recodai = Path(sys.executable).parent / "recodai"
    script = subprocess.run([str(recodai), "score", str(solution), str(submission)], capture_output=True, text=True)
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip().endswith("oF1 1.000000")


def test_validate_submission_reports_every_problem(tmp_path, capsys):
    images = tmp_path / "imgs"
    for case_id in ("1", "2", "3", "4"):
        write_png(images / f"{case_id}.png", np.zeros((4, 4, 3), np.uint8))
    good = tmp_path / "good.csv"
    good.write_text('case_id,annotation\n1,authentic\n2,"[1, 2]"\n3,"[1, 1];[16, 1]"\n4,authentic\n')
    assert main(["validate-submission", str(good), "--images", str(images)]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text('case_id,annotation\n1,Authentic\n2,"[1, 2];[1, 2]"\n3,"[1, 1];"\n3,authentic\n5,authentic\n')
    assert main(["validate-submission", str(bad), "--images", str(images)]) == 1
    out = capsys.readouterr().out
    for needle in [
        "not the literal 'authentic'",
        "duplicate of an earlier instance",
        "trailing ';'",
        "case_id 3 appears more than once",
        "case_id 4 is missing",
        "case_id 5 has no image",
        "INVALID",
    ]:
        assert needle in out, needle
    more = tmp_path / "more.csv"
    more.write_text('case_id,annotation\n1,[]\n2,"[5, 1, 1, 1]"\n3,"[40, 3]"\n4,\n')
    assert main(["validate-submission", str(more), "--images", str(images)]) == 1
    out = capsys.readouterr().out
    for needle in ["empty instance '[]'", "ascending order", "decodes to an empty mask", "case_id 4: empty annotation"]:
        assert needle in out, needle


def test_make_solution_round_trips_masks(kaggle_root, tmp_path, capsys):
    out = tmp_path / "solution.csv"
    assert main(["make-solution", str(kaggle_root), "--out", str(out)]) == 0
    solution = pd.read_csv(out, dtype=str)
    assert len(solution) == 12 and solution["case_id"].is_unique
    forged = solution.set_index("case_id").loc["forged/100"]
    mask = np.load(kaggle_root / "train_masks" / "100.npy")
    assert forged["annotation"] == encode(mask[0])
    assert forged["shape"] == f"[{mask.shape[1]}, {mask.shape[2]}]"
    assert solution.set_index("case_id").loc["authentic/100", "shape"] == "authentic"
    supplemental = make_solution(kaggle_root, "supplemental")
    assert supplemental["annotation"].iloc[0].count(";") == 1


def test_check_data(kaggle_root, capsys):
    assert main(["check-data", str(kaggle_root)]) == 0
    assert "ok, 15 images" in capsys.readouterr().out
    (kaggle_root / "train_masks" / "100.npy").unlink()
    assert main(["check-data", str(kaggle_root)]) == 2
    assert "100.png: forged image without mask" in capsys.readouterr().err
