"""``make gpu-check``: one prepared run that says what a GPU buys (training and inference), in minutes.

    python -m bench.gpu_check [--steps N] [--figures N] [--device cuda|cpu]

On CUDA, for each active segmenter of the ``full`` profile: a few hundred AMP training steps (the
project's ``TrainViews`` sampling, augmentation, ``WeightedLoss`` and AdamW, on a small synthetic
root), then the inference stack on the GPU: a random-weight bundle with the full profile's structure
(``bench.timing_bundle``: every fold model, flips TTA) run through ``recodai predict``'s worker pool
(4 workers, as on a Kaggle GPU notebook) on a few dozen figures at the real test set's sizes
(``bench.kaggle_scale``). Writes images/s for training and inference, peak GPU memory and the
projected time of one full-profile fold on a 16 GB Kaggle GPU (P100/T4 class) to bench/results.md
(section ``gpu``).

Without CUDA the same code runs on the CPU with the ``demo`` profile, a handful of steps and figures,
and says so; it then writes results only when no GPU numbers exist yet (so the note says none was
at hand). Sized to finish within 8 minutes on a CUDA machine (not yet run on one: no GPU was at hand when
it was written; the CPU path is what the tests cover).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import math
import resource
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from bench.kaggle_scale import time_pool, write_figures
from bench.results_io import RESULTS_JSON, record
from bench.timing_bundle import build_timing_bundle
from ensemble.parallel import available_cores
from models.segmenter.augment import train_transform
from models.segmenter.config import active_models, model_entry, model_spec, train_config
from models.segmenter.data import TrainViews
from models.segmenter.losses import WeightedLoss
from models.segmenter.networks import build_network
from shared.config import load_params
from shared.dataset import discover, labelled_rows
from shared.evidence_maps import ComputedEvidence
from shared.synth.config import load_config
from shared.synth.writer import generate

GPU_STEPS, GPU_FIGURES, GPU_WORKERS = 200, 32, 4
CPU_STEPS, CPU_FIGURES, CPU_BATCH, CPU_MAX_MP = 3, 2, 2, 0.5
KAGGLE_GPU_GB = 16
# Rough mixed-precision training speed relative to a Kaggle P100/T4 (dense fp16 convnet throughput;
# an assumption, stated in the output): used to project a fold measured elsewhere onto a Kaggle GPU.
RELATIVE_SPEED = {"T4": 1.0, "P100": 1.0, "V100": 2.5, "A10": 2.0, "L4": 1.8, "A100": 5.0, "H100": 8.0, "H200": 8.0}


def relative_speed(name: str) -> float | None:
    """How many Kaggle-GPU-equivalents this device is (``None`` when it is not in the table)."""
    names = sorted(RELATIVE_SPEED, key=len, reverse=True)  # "A100" before "A10"
    return next((RELATIVE_SPEED[k] for k in names if k in name.upper()), None)


def _params(profile: str) -> dict:
    params = copy.deepcopy(load_params())
    params["profile"] = profile
    return params


def _memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # peak RSS of this process


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(name: str, params: dict, rows, device: torch.device, steps: int, batch: int | None) -> dict:
    """Images/s of ``steps`` AMP training steps of one model (after 3 warm-up steps) and peak memory."""
    entry = model_entry(name, params)
    spec, cfg = model_spec(name, entry), train_config(entry)
    batch = batch or cfg.batch_size
    torch.manual_seed(0)
    network = build_network(spec).to(device).train()
    evidence = ComputedEvidence(rows, spec.evidence).__getitem__ if spec.evidence is not None else None
    augment = train_transform(spec.policy.pad_value, evidence=evidence is not None)
    dataset = TrainViews(rows, spec.policy, cfg.global_p, cfg.positive_crop_p, augment, evidence=evidence)
    workers = min(4, available_cores() - 1) if device.type == "cuda" else 0
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    criterion = WeightedLoss(cfg.loss).to(device)
    mean, std = (torch.tensor(v, device=device).view(1, -1, 1, 1) for v in spec.input_stats())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    warmup, done, epoch, start = 3, 0, 0, None
    while done < steps + warmup:
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers)
        for images, targets in loader:
            if done == warmup:
                _sync(device)
                start = time.perf_counter()
            images = (images.to(device, non_blocking=True).float() - mean) / std
            with torch.autocast(device.type, enabled=amp):
                loss = criterion(network(images), targets.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            done += 1
            if done >= steps + warmup:
                break
        epoch += 1
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "model": name,
        "encoder": spec.encoder,
        "view_px": spec.policy.size,
        "batch": batch,
        "steps": steps,
        "train_images_per_s": steps * batch / seconds,
        "peak_memory_gb": _memory_gb(device),
        "epochs": cfg.epochs,
    }


def fold_hours(row: dict, n_images: int, n_folds: int, speed: float | None) -> tuple[float, float | None]:
    """Hours of one fold's training (every epoch, no early stop) here and projected to a Kaggle GPU."""
    train_images = n_images * (n_folds - 1) / n_folds
    hours = row["epochs"] * train_images / row["train_images_per_s"] / 3600
    return hours, (hours * speed if speed else None)


def _labelled_count(params: dict) -> tuple[int, str]:
    root = Path(params["data"]["root"])
    if root.name != "synthetic" and root.is_dir():
        return len(labelled_rows(discover(root))), f"labelled images of {root}"
    full = params["synth"]["full"]
    return 2 * full["n_train"] + full["n_supplemental"], "labelled images of the full synthetic profile"


def run(device_name: str | None = None, steps: int | None = None, figures: int | None = None) -> list[dict]:
    """Training rows per model, one inference row, one projection row (CPU: tiny sizes, demo profile)."""
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_gpu = device.type == "cuda"
    profile = "full" if on_gpu else "demo"
    steps = steps or (GPU_STEPS if on_gpu else CPU_STEPS)
    figures = figures or (GPU_FIGURES if on_gpu else CPU_FIGURES)
    name = torch.cuda.get_device_name(device) if on_gpu else "cpu"
    speed = relative_speed(name) if on_gpu else None
    where = name if on_gpu else "cpu (no CUDA: demo profile, tiny sizes; not a GPU measurement)"
    print(f"gpu-check on {where}: {steps} training steps per model, {figures} figures", flush=True)
    params = _params(profile)
    rows: list[dict] = []
    threads = torch.get_num_threads()
    if not on_gpu:
        torch.set_num_threads(1)  # a smoke run: one thread never spins against other jobs on shared cores
    try:
        return _run(rows, device, on_gpu, profile, params, steps, figures, speed, where)
    finally:
        torch.set_num_threads(threads)


def _run(
    rows: list[dict],
    device: torch.device,
    on_gpu: bool,
    profile: str,
    params: dict,
    steps: int,
    figures: int,
    speed: float | None,
    where: str,
) -> list[dict]:
    """The body of :func:`run` (training rows, the stack row, the projection note)."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp_name:
        tmp = Path(tmp_name)
        synth = dataclasses.replace(load_config("demo", params), n_train=8 if on_gpu else 2, n_supplemental=1, n_test=1)
        generate(tmp / "data", synth, workers=1, overwrite=True)
        train_rows = labelled_rows(discover(tmp / "data"))
        n_images, source = _labelled_count(params)
        n_folds = len(params["folds"]["ids"])
        for model in active_models(params):
            print(f"  train {model} …", flush=True)
            try:
                row = train_rate(model, params, train_rows, device, steps, None if on_gpu else CPU_BATCH)
            except torch.OutOfMemoryError as exc:  # a finding, not a crash: the batch does not fit this GPU
                rows.append({"model": model, "device": where, "note": f"out of memory: {str(exc)[:200]}"})
                torch.cuda.empty_cache()
                continue
            here, kaggle = fold_hours(row, n_images, n_folds, speed)
            row |= {"device": where, "fold_hours_here": here}
            row["fold_hours_kaggle_16gb"] = kaggle if kaggle is not None else ""
            row["fits_16gb"] = ("yes" if row["peak_memory_gb"] < 0.9 * KAGGLE_GPU_GB else "NO") if on_gpu else ""
            rows.append(row)
            if on_gpu:
                torch.cuda.empty_cache()

        print(f"  timing bundle ({profile} profile) …", flush=True)
        bundle = build_timing_bundle(tmp / "bundle", profile, n_train=8 if on_gpu else 4, device=str(device))
        figure_list = write_figures(tmp / "figures", figures, max_megapixels=None if on_gpu else CPU_MAX_MP)
        from ensemble.predict import Stack

        jobs = GPU_WORKERS if on_gpu else 1
        print(f"  stack on {device.type}, {jobs} worker(s), {figures} figures …", flush=True)
        factory = functools.partial(Stack.from_bundle, str(bundle), device=str(device))
        timed = time_pool(factory, figure_list, jobs, timeout=600)
        megapixels = sum(f["megapixels"] for f in figure_list)
        peak = ""
        if on_gpu:  # one worker's share: the same stack in this process on the largest figure
            torch.cuda.reset_peak_memory_stats(device)
            largest = max(figure_list, key=lambda f: f["megapixels"])
            Stack.from_bundle(str(bundle), device=str(device)).annotate(largest["path"])
            peak = torch.cuda.max_memory_allocated(device) / 2**30
        rows.append(
            {
                "model": f"full stack ({profile} profile, every fold, its TTA)",
                "device": where,
                "steps": "",
                "infer_images_per_s": figures / timed["wall"],
                "infer_megapixels_per_s": megapixels / timed["wall"],
                "jobs": jobs,
                "peak_memory_gb": peak,  # per worker (GPU); x jobs for the whole pool
                "failed": timed["failed"],
                "hours_for_3300": 3300 / (figures / timed["wall"]) / 3600,
            }
        )
    rows.append(
        {
            "model": "projection",
            "device": where,
            "note": f"fold = each model's epochs over {n_images} {source} x {n_folds - 1}/{n_folds}, no early stop; "
            f"Kaggle 16 GB GPU = this device's time x {speed or 'unknown (device not in RELATIVE_SPEED)'} "
            "(assumed relative speed)",
        }
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--steps", type=int, help=f"training steps per model (default {GPU_STEPS}; CPU {CPU_STEPS})")
    parser.add_argument("--figures", type=int, help=f"figures for inference (default {GPU_FIGURES}; CPU {CPU_FIGURES})")
    args = parser.parse_args(argv)
    from shared.logs import setup_logging

    setup_logging()
    start = time.perf_counter()
    rows = run(args.device, args.steps, args.figures)
    for row in rows:
        print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    on_gpu = not str(rows[0]["device"]).startswith("cpu")
    have_gpu_numbers = RESULTS_JSON.is_file() and '"gpu"' in RESULTS_JSON.read_text()
    if on_gpu or not have_gpu_numbers:
        note = "`make gpu-check` (bench/gpu_check.py). " + (
            "Measured on a CUDA device."
            if on_gpu
            else "No CUDA machine was at hand: these rows are the CPU smoke run (demo profile, tiny sizes), "
            "not GPU numbers; run `make gpu-check` on a CUDA machine to replace them."
        )
        record("gpu", rows, note)
        print("wrote bench/results.md (section gpu)")
    else:
        print("no CUDA: bench/results.md keeps its GPU numbers (this was the CPU smoke run)")
    print(f"gpu-check took {math.ceil(time.perf_counter() - start)} s")


if __name__ == "__main__":
    main()
