"""Worker pool, isolation, resume and atomic writes of ``recodai predict`` (ensemble/parallel.py, progress.py).

The misbehaviour comes from ``tests/pool_fixtures.CueAnnotator`` (file names cue a hang, a SIGKILL,
``os._exit`` or an exception), never from production flags.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from ensemble.guard import TimeGuard
from ensemble.parallel import FigurePool, SerialRunner, WorkerStartError, resolve_jobs
from ensemble.predict import predict_folder
from ensemble.progress import ProgressLog, progress_path
from shared.submission import write_submission
from tests.pool_fixtures import CueAnnotator, broken_factory


def figures(folder: Path, names: list[str]) -> Path:
    """Files with image suffixes (contents are arbitrary: the fake annotator never decodes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / f"{name}.png").write_bytes(f"figure {name} {i}".encode() * (i + 1))
    return folder


NAMES = ["a", "b_sleep", "c", "d_kill", "e", "f_exit", "g_raise", "h", "i", "j"]


def test_a_hanging_and_a_dying_figure_cost_one_row_each(tmp_path, caplog):
    images = figures(tmp_path / "images", NAMES)
    (tmp_path / "sample_submission.csv").write_text("case_id,annotation\n" + "".join(f"{n},x\n" for n in NAMES[::-1]))
    out = tmp_path / "out" / "submission.csv"
    factory = functools.partial(CueAnnotator, tmp_path / "calls.txt")
    with FigurePool(factory, jobs=2, figure_timeout_s=2.0) as pool:
        got = predict_folder(pool, images, out)
        replaced = pool.replaced
    assert replaced == 3  # the hung worker, the SIGKILLed one and the one that called os._exit
    for bad in ("b_sleep", "d_kill", "f_exit", "g_raise"):
        assert got[bad] == "authentic"
    assert "b_sleep.png: prediction failed" in caplog.text and "time limit of 2 s" in caplog.text
    assert "d_kill.png: prediction failed" in caplog.text and "SIGKILL" in caplog.text
    assert "f_exit.png: prediction failed" in caplog.text and "status 3" in caplog.text
    assert "g_raise.png: prediction failed" in caplog.text and "cannot read this figure" in caplog.text

    serial = tmp_path / "serial.csv"
    expected = predict_folder(SerialRunner(CueAnnotator(misbehave=False).annotate), images, serial)
    assert all(got[k] == expected[k] for k in NAMES if k not in ("b_sleep", "d_kill", "f_exit"))
    rows = pd.read_csv(out, dtype=str)
    assert rows["case_id"].tolist() == NAMES[::-1]  # sample-submission order, whatever the completion order


def test_pool_output_is_byte_identical_to_the_serial_run(tmp_path):
    names = [f"fig{i:02d}" for i in range(12)]
    images = figures(tmp_path / "images", names)
    with FigurePool(CueAnnotator, jobs=3, figure_timeout_s=60) as pool:
        predict_folder(pool, images, tmp_path / "pool.csv")
    predict_folder(CueAnnotator().annotate, images, tmp_path / "serial.csv")
    assert (tmp_path / "pool.csv").read_bytes() == (tmp_path / "serial.csv").read_bytes()


def test_the_time_guard_level_travels_with_each_task(tmp_path):
    names = [f"fig{i:02d}" for i in range(8)]
    images = figures(tmp_path / "images", names)
    guard = TimeGuard(None, budget_s=1e-9, n_images=len(names), set_level=None, n_levels=3, warmup=1)
    with FigurePool(CueAnnotator, jobs=1) as pool:
        got = predict_folder(pool, images, tmp_path / "s.csv", guard=guard)
    levels = [int(got[n].split(", ")[1].rstrip("]")) - 1 for n in names]
    assert levels[0] == 0 and levels[-1] == 2 and levels == sorted(levels)
    assert guard.done == len(names)


def test_a_worker_that_cannot_start_fails_the_run_with_its_reason(tmp_path):
    images = figures(tmp_path / "images", ["a", "b"])
    out = tmp_path / "s.csv"
    with pytest.raises(WorkerStartError, match="no such bundle"), FigurePool(broken_factory, jobs=1) as pool:
        predict_folder(pool, images, out)
    assert pd.read_csv(out)["annotation"].tolist() == ["authentic", "authentic"]  # still a valid file


class Interrupt(BaseException):
    """Stands for the notebook being stopped (not an ``Exception``: nothing may swallow it)."""


def test_resume_skips_the_rows_an_interrupted_run_finished(tmp_path):
    names = [f"fig{i:02d}" for i in range(7)]
    images = figures(tmp_path / "images", names)
    out = tmp_path / "submission.csv"
    calls = tmp_path / "calls.txt"
    annotator = CueAnnotator(calls)

    def stops_after_three(path: Path) -> str:
        if calls.exists() and len(calls.read_text().split()) >= 3:
            raise Interrupt
        return annotator.annotate(path)

    with pytest.raises(Interrupt):
        predict_folder(stops_after_three, images, out, checkpoint_every=100)
    assert len(ProgressLog(out).read()) == 3
    first = pd.read_csv(out, dtype=str)
    assert (first["annotation"] != "authentic").sum() == 3  # written on the way out, still valid

    calls.unlink()
    predict_folder(annotator.annotate, images, out, resume=True)
    assert calls.read_text().split() == names[3:]  # only the unfinished rows were predicted
    predict_folder(CueAnnotator().annotate, images, tmp_path / "whole.csv")
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()

    calls.unlink()
    predict_folder(annotator.annotate, images, out)  # without --resume: everything again
    assert calls.read_text().split() == names


def test_progress_log_survives_a_line_cut_short(tmp_path):
    out = tmp_path / "submission.csv"
    progress_path(out).write_text('{"case_id": "a", "annotation": "[1, 2]", "problem": null}\n{"case_id": "b", "ann')
    log = ProgressLog(out)
    assert log.read() == {"a": "[1, 2]"}
    log.start(resume=True)
    log.add("c", "authentic", "worker process killed by SIGKILL")
    log.close()
    assert log.read() == {"a": "[1, 2]", "c": "authentic"}
    assert log.read(["c"]) == {"c": "authentic"}


class Exploding(dict):
    def get(self, key, default=None):
        if key == "c":
            raise RuntimeError("disk full")
        return super().get(key, default)


def test_submission_is_replaced_atomically_or_not_at_all(tmp_path):
    out = tmp_path / "submission.csv"
    write_submission({"a": "[1, 2]"}, ["a", "b", "c"], out)
    before = out.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        write_submission(Exploding(a="[3, 4]"), ["a", "b", "c"], out)
    assert out.read_bytes() == before  # the old complete file, not a half-written new one
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]  # no temporary file left behind


def test_jobs_zero_means_every_available_core():
    assert resolve_jobs(0) == resolve_jobs(None) >= 1
    assert resolve_jobs(3) == 3


def test_serial_runner_warm_up_is_a_no_op():
    runner = SerialRunner(lambda path: "authentic")
    runner.warm_up()  # the pool's contract: callable before run, here with nothing to start
    assert [o.annotation for o in runner.run([("a", Path("a.png"))])] == ["authentic"]
