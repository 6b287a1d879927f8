"""Entry point of the assembled offline Kaggle inference kernel (bundled by ``make kernels``).

Reads its settings from ``RECODAI_KERNEL_SETTINGS`` (JSON written into the generated script), installs
missing wheels from the wheels dataset without network, writes an all-``authentic`` submission first,
then runs the full stack in worker processes (``jobs``: 0 = every core; each figure under
``figure_timeout_s``) under a time guard; with ``resume`` a restarted session keeps the rows its
``submission.csv.progress`` lists. Input and output roots can be moved with
``KAGGLE_INPUT`` / ``KAGGLE_WORKING`` (used by the local simulation test).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("recodai.kernel")


def install_missing(wheels: Path, packages: dict[str, str]) -> None:
    """``pip install --no-index --no-deps --find-links`` for each ``{module: requirement}`` that does not import.

    ``--no-deps``: the wheels dataset holds exactly the packages the notebook image lacks; their dependencies
    are in the image (rapidocr-onnxruntime would otherwise ask for a second OpenCV build).
    """
    missing = [req for module, req in packages.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return
    if not wheels.is_dir():
        raise FileNotFoundError(f"{wheels}: wheels dataset not attached, cannot install {missing}")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", str(wheels), *missing],
        check=True,
    )


def main() -> int:
    settings = json.loads(os.environ["RECODAI_KERNEL_SETTINGS"])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    inputs = Path(os.environ.get("KAGGLE_INPUT", "/kaggle/input"))
    working = Path(os.environ.get("KAGGLE_WORKING", "/kaggle/working"))
    competition = inputs / settings["competition"]
    out = working / "submission.csv"
    install_missing(inputs / settings["wheels_dataset"], settings["wheel_modules"])

    from ensemble.guard import TimeGuard
    from ensemble.parallel import FigurePool, resolve_jobs
    from ensemble.predict import Stack, predict_folder
    from shared.logs import setup_logging
    from shared.submission import image_ids, ordered_ids, write_submission

    setup_logging()
    images = competition / "test_images"
    sample = competition / "sample_submission.csv"
    order = ordered_ids(images, sample)
    resume = bool(settings.get("resume", False))
    if not (resume and out.is_file()):
        write_submission({}, order, out)  # a valid file exists before any model loads
    device = "cpu"
    if importlib.util.find_spec("torch") is not None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    weights = inputs / settings["weights_dataset"]
    jobs = resolve_jobs(settings.get("jobs", 0))
    log.info("predicting on %s with %d worker process(es)", device, jobs)
    budget = float(settings["time_budget_s"])
    guard = TimeGuard(None, budget, len(image_ids(images)), None, Stack.n_levels)
    factory = functools.partial(Stack.from_bundle, weights, device=device, tta=True)
    with FigurePool(factory, jobs, settings.get("figure_timeout_s")) as pool:
        predict_folder(
            pool,
            images,
            out,
            sample,
            checkpoint_every=int(settings.get("checkpoint_every", 25)),
            time_budget_s=budget,
            guard=guard,
            resume=resume,
        )
    log.info("done: %s", out)
    return 0
