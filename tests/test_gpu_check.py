"""``make gpu-check`` (bench/gpu_check.py) on a machine without CUDA: the same code on the CPU, tiny sizes."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bench import gpu_check


def test_training_rate_and_fold_projection_run_on_cpu(tmp_path):
    from shared.dataset import discover, labelled_rows
    from tests.conftest import build_kaggle_root

    params = gpu_check._params("demo")
    rows = labelled_rows(discover(build_kaggle_root(tmp_path / "data", n_cases=3)))
    model = params["segmenter"]["active"][-1]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on busy shared cores two spinning threads are many times slower than one
    try:
        row = gpu_check.train_rate(model, params, rows, torch.device("cpu"), steps=1, batch=2)
    finally:
        torch.set_num_threads(threads)
    assert row["model"] == model and row["train_images_per_s"] > 0 and row["peak_memory_gb"] > 0
    here, kaggle = gpu_check.fold_hours(row, n_images=600, n_folds=3, speed=8.0)
    assert here > 0 and kaggle == pytest.approx(8.0 * here)
    assert gpu_check.relative_speed("NVIDIA H200") == 8.0 and gpu_check.relative_speed("Tesla T4") == 1.0
    assert gpu_check.relative_speed("NVIDIA A100-SXM4-80GB") == 5.0 and gpu_check.relative_speed("NVIDIA A10") == 2.0
    assert gpu_check.relative_speed("Some Future GPU") is None


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_cpu_and_says_so():
    rows = gpu_check.run("cpu", steps=1, figures=1)
    table = pd.DataFrame(rows)
    assert table["device"].str.startswith("cpu (no CUDA").all()
    trained = table[table["train_images_per_s"].notna()]
    assert set(trained["model"]) == set(gpu_check._params("demo")["segmenter"]["active"])
    stack = table[table["model"].str.startswith("full stack")].iloc[0]
    assert stack["infer_images_per_s"] > 0 and stack["failed"] == 0
