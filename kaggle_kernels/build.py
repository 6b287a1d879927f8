"""Generate the Kaggle kernels and dataset folders from params.yaml, so they never drift from the repo.

``python -m kaggle_kernels.build kernels``  → ``kaggle_kernels/build/inference/`` (one self-contained
script + kernel-metadata.json) and ``kaggle_kernels/build/train-<model>/`` per active segmenter.
``python -m kaggle_kernels.build datasets`` → ``kaggle_kernels/build/datasets/{weights,wheels,code}/``,
each with its dataset-metadata.json, ready for ``kaggle datasets create|version -p``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from kaggle_kernels.codebundle import REPO_ROOT, collect, render
from kaggle_kernels.metadata import dataset_metadata, kernel_metadata, write_json
from shared.config import load_params

BUILD = REPO_ROOT / "kaggle_kernels" / "build"
CODE_PACKAGES = ("shared", "models", "ensemble", "kaggle_kernels")


REQUIREMENTS = (REPO_ROOT / "requirements.txt", REPO_ROOT / "requirements-ocr.txt")


def pinned(requirement: str, requirements: tuple[Path, ...] = REQUIREMENTS) -> str:
    """``name==version`` for a package, from the files where versions are pinned (``make venv`` installs both)."""
    wanted = re.sub(r"[-_.]+", "-", requirement).lower()
    for path in requirements:
        for line in path.read_text().splitlines():
            name, _, version = line.strip().partition("==")
            if version and re.sub(r"[-_.]+", "-", name).lower() == wanted:
                return f"{name}=={version}"
    raise KeyError(f"{', '.join(str(p) for p in requirements)}: {requirement} is not pinned")


def kernel_settings(params: dict) -> dict:
    """What the inference kernel needs to know, written into the generated script."""
    kaggle = params["kaggle"]
    return {
        "competition": kaggle["competition"],
        "weights_dataset": kaggle["datasets"]["weights"],
        "wheels_dataset": kaggle["datasets"]["wheels"],
        "wheel_modules": {kaggle["wheel_modules"][w]: pinned(w) for w in kaggle["wheels"]},
        "time_budget_s": float(kaggle["inference"]["time_budget_hours"]) * 3600.0,
        "jobs": int(kaggle["inference"].get("jobs", 0)),
        "resume": bool(kaggle["inference"].get("resume", True)),
        "figure_timeout_s": float(params["predict"]["figure_timeout_s"]),
        "checkpoint_every": int(params["predict"]["checkpoint_every"]),
    }


def build_inference(out: Path, params: dict) -> Path:
    """The assembled offline inference kernel: ``inference.py`` + ``kernel-metadata.json``."""
    kaggle = params["kaggle"]
    settings = kernel_settings(params)
    preamble = f"os.environ.setdefault('RECODAI_KERNEL_SETTINGS', {json.dumps(settings)!r})\n"
    script = render(collect(["kaggle_kernels.inference_entry"]), "kaggle_kernels.inference_entry:main", preamble)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference.py").write_text(script)
    metadata = kernel_metadata(
        kaggle["username"],
        kaggle["inference"]["title"],
        "inference.py",
        kaggle["competition"],
        [kaggle["datasets"]["weights"], kaggle["datasets"]["wheels"]],
        gpu=bool(kaggle["inference"]["gpu"]),
    )
    write_json(out / "kernel-metadata.json", metadata)
    return out


def build_datasets(out: Path, params: dict, bundle: Path, wheels: bool = True) -> Path:
    """Dataset folders: trained bundle (weights + fusion), dependency wheels, and the code for training."""
    kaggle = params["kaggle"]
    username, slugs = kaggle["username"], kaggle["datasets"]
    if not (bundle / "bundle.json").is_file():
        raise FileNotFoundError(f"{bundle}: no bundle.json; run `dvc repro bundle` (or `make demo`) first")
    weights = out / "weights"
    shutil.rmtree(weights, ignore_errors=True)
    shutil.copytree(bundle, weights)
    write_json(weights / "dataset-metadata.json", dataset_metadata(username, slugs["weights"], "Recodai weights"))
    code = out / "code"
    shutil.rmtree(code, ignore_errors=True)
    for package in CODE_PACKAGES:
        shutil.copytree(REPO_ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__", "build"))
    for name in ("params.yaml", "requirements.txt", "requirements-ocr.txt", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, code / name)
    write_json(code / "dataset-metadata.json", dataset_metadata(username, slugs["code"], "Recodai code"))
    if wheels:
        folder = out / "wheels"
        folder.mkdir(parents=True, exist_ok=True)
        requirements = [pinned(w) for w in kaggle["wheels"]]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(folder),
                *requirements,
            ],
            check=True,
        )
        write_json(folder / "dataset-metadata.json", dataset_metadata(username, slugs["wheels"], "Recodai wheels"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["kernels", "datasets"])
    parser.add_argument("--out", default=str(BUILD))
    parser.add_argument("--bundle", default="artifacts/bundle", help="bundle folder for the weights dataset")
    parser.add_argument("--no-wheels", action="store_true", help="skip downloading wheels (offline builds)")
    args = parser.parse_args(argv)
    params, out = load_params(), Path(args.out)
    if args.what == "kernels":
        print(f"inference kernel: {build_inference(out / 'inference', params)}")
        for folder in build_training_kernels(out, params):
            print(f"training kernel: {folder}")
    else:
        print(f"datasets: {build_datasets(out / 'datasets', params, Path(args.bundle), wheels=not args.no_wheels)}")


def build_training_kernels(out: Path, params: dict) -> list[Path]:
    """One training kernel per active segmenter (see ``kaggle_kernels/train_entry.py``)."""
    kaggle = params["kaggle"]
    folders = []
    for model in params.get("segmenter", {}).get("active", []):
        settings = {
            "model": model,
            "competition": kaggle["competition"],
            "code_dataset": kaggle["datasets"]["code"],
            "wheels_dataset": kaggle["datasets"]["wheels"],
            "wheels": [pinned(w) for w in kaggle["wheels"]],
        }
        preamble = f"os.environ.setdefault('RECODAI_TRAIN_SETTINGS', {json.dumps(settings)!r})\n"
        script = render(collect(["kaggle_kernels.train_entry"]), "kaggle_kernels.train_entry:main", preamble)
        folder = out / f"train-{model.replace('_', '-')}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.py").write_text(script)
        metadata = kernel_metadata(
            kaggle["username"],
            f"Recodai Train {model.replace('_', ' ')}",
            "train.py",
            kaggle["competition"],
            [kaggle["datasets"][key] for key in ("code", "wheels", "pretrained") if kaggle["datasets"].get(key)],
            gpu=bool(kaggle["training"]["gpu"]),
        )
        write_json(folder / "kernel-metadata.json", metadata)
        folders.append(folder)
    return folders


if __name__ == "__main__":
    main()
