"""The matcher alone on the synthetic test split: oF1 per slice, false positives, speed, memory.

Quality: ``recodai match``'s own path (``models.matcher.batch``) over ``<data.root>/test_images``,
scored with the exact metric against ``solution.csv``, sliced by ``manifest.csv`` (compound or single,
family, transform, photometric change, JPEG). Speed: CPU seconds per megapixel of each single-threaded
worker (process time, so other load on the machine inflates it less than wall time). Memory: peak RSS of
a fresh process matching one 4000 x 4000 figure, next to the same process after imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from models.matcher.batch import Task, run_tasks
from models.matcher.config import MatcherParams
from shared.config import data_root, param
from shared.metric import read_csv_strict, score_frames

TARGETS = {"compound oF1": 0.75, "authentic FP rate": 0.05, "cpu s per MP": 2.0}


def _slices(per_row: pd.DataFrame, manifest: pd.DataFrame) -> list[dict]:
    table = per_row.merge(manifest, on="case_id", how="left")
    authentic = table["truth"] == "authentic"
    forged = ~authentic
    rows = []

    def add(name: str, part: pd.DataFrame) -> None:
        part_authentic = part["truth"] == "authentic"
        rows.append(
            {
                "slice": name,
                "n": len(part),
                "oF1": float(part["score"].mean()) if len(part) else float("nan"),
                "forged oF1": float(part.loc[~part_authentic, "score"].mean()) if (~part_authentic).any() else "",
                "detected": float((part.loc[~part_authentic, "predicted"] != "authentic").mean())
                if (~part_authentic).any()
                else "",
                "authentic FP rate": float((part.loc[part_authentic, "predicted"] != "authentic").mean())
                if part_authentic.any()
                else "",
            }
        )

    add("all", table)
    add("compound", table[table["compound"] == 1])
    add("single panel", table[table["compound"] == 0])
    for family, part in table.groupby("family", sort=True):
        add(f"family {family}", part)
    transforms = table[forged].assign(t=table.loc[forged, "transforms"].fillna("").str.split(";")).explode("t")
    for name, part in transforms.groupby("t", sort=True):
        if name:
            add(f"transform {name}", part)
    add("photometric change", table[forged & table["photometric"].notna()])
    add("JPEG after forging", table[forged & (table["jpeg"] > 0)])
    return rows


def quality_and_speed(root: Path, params: MatcherParams) -> tuple[list[dict], dict]:
    images, solution, manifest = root / "test_images", root / "solution.csv", root / "manifest.csv"
    for needed in (images, solution, manifest):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: generate the synthetic data first (dvc repro synth)")
    truth = read_csv_strict(str(solution))
    tasks = [Task(key=cid, path=str(images / f"{cid}.png")) for cid in truth["case_id"]]
    outcomes = list(run_tasks(tasks, params, params.jobs, desc="bench matcher"))
    submission = pd.DataFrame({"case_id": [o.key for o in outcomes], "annotation": [o.annotation for o in outcomes]})
    report = score_frames(truth, submission, str(solution), "matcher")
    meta = pd.read_csv(manifest, dtype={"case_id": str})
    rows = _slices(report.per_row, meta)
    megapixels = np.array([o.extra["megapixels"] for o in outcomes])
    cpu = np.array([o.extra["cpu_seconds"] for o in outcomes])
    speed = {
        "images": len(outcomes),
        "cpu s per MP": float(cpu.sum() / megapixels.sum()),
        "cpu s per MP, p95 image": float(np.percentile(cpu / np.maximum(megapixels, 1e-6), 95)),
        "cpu s per image": float(cpu.mean()),
        "mean MP": float(megapixels.mean()),
    }
    return rows, speed


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np, cv2
    cv2.setNumThreads(1)
    from models.matcher import MatcherParams, match_image
    from shared.config import param
    params = MatcherParams.from_dict(param("matcher"))
    rng = np.random.default_rng(0)
    field = cv2.GaussianBlur(rng.normal(0, 1, (1000, 1000)).astype(np.float32), (0, 0), 2)
    field = cv2.resize(field, (4000, 4000), interpolation=cv2.INTER_CUBIC)
    field += cv2.GaussianBlur(rng.normal(0, 1, (4000, 4000)).astype(np.float32), (0, 0), 1.5) * 0.5
    gray = np.clip((field - field.min()) / np.ptp(field) * 220 + 20, 0, 255).astype(np.uint8)
    image = np.repeat(gray[:, :, None], 3, axis=2)
    image[2600:2900, 3100:3400] = image[500:800, 500:800]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    result = match_image(image, params)
    seconds = time.process_time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_mb": before / 1024, "peak_mb": peak / 1024, "cpu_s": seconds,
                      "operations": len(result.operations), "scale": result.features["working_scale"]}))
    """
)


def memory_4000() -> dict:
    """Peak RSS of matching one 4000 x 4000 figure in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> list[dict]:
    params = MatcherParams.from_dict(param("matcher"))
    root = data_root()
    rows, speed = quality_and_speed(root, params)
    memory = memory_4000()
    compound = next(r for r in rows if r["slice"] == "compound")
    overall = next(r for r in rows if r["slice"] == "all")
    rows.append(
        {
            "slice": "targets",
            "n": speed["images"],
            "oF1": f"compound {compound['oF1']:.3f} (target >= {TARGETS['compound oF1']})",
            "authentic FP rate": f"{overall['authentic FP rate']:.3f} (target <= {TARGETS['authentic FP rate']})",
            "cpu s per MP": f"{speed['cpu s per MP']:.2f} (target <= {TARGETS['cpu s per MP']}); "
            f"p95 image {speed['cpu s per MP, p95 image']:.2f}; {speed['cpu s per image']:.2f} s/image "
            f"at {speed['mean MP']:.2f} MP",
            "4000x4000": f"peak RSS {memory['peak_mb']:.0f} MB ({memory['before_mb']:.0f} MB after imports), "
            f"{memory['cpu_s']:.1f} cpu s, working scale {memory['scale']:.2f}, "
            f"{memory['operations']} operation(s) (one planted)",
        }
    )
    return rows
