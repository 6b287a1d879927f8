"""Cost of the repetition evidence (``shared/evidence.py``) on the synthetic test figures, and what it sees.

Speed: CPU seconds per megapixel of one single-threaded process (target <= 0.5), median and p95 over
figures, plus the 4000x4000 figure (downscaled to ``max_pixels`` first). Signal: on the forged test
figures, the share of copied pixels whose ``repeat x coherence`` reaches 0.5, against the share of
untouched pixels that do (on forged and on authentic figures).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pandas as pd

from shared.config import data_root
from shared.evidence import compute_evidence
from shared.evidence_maps import evidence_settings
from shared.images import load_image
from shared.rle import decode_instances

TARGET_CPU_S_PER_MP = 0.5


def run() -> list[dict]:
    cv2.setNumThreads(1)
    spec, _ = evidence_settings()
    root = data_root()
    solution = pd.read_csv(root / "solution.csv", dtype=str, keep_default_na=False)
    per_mp, recall, false_forged, false_authentic = [], [], [], []
    for row in solution.itertuples(index=False):
        image = load_image(root / "test_images" / f"{row.case_id}.png")
        start = time.process_time()
        evidence = compute_evidence(image, spec).astype(np.float32) / 255.0
        per_mp.append((time.process_time() - start) / (image.shape[0] * image.shape[1] / 1e6))
        hot = evidence[:, :, 0] * evidence[:, :, 1] >= 0.5
        if row.annotation == "authentic":
            false_authentic.append(hot.mean())
            continue
        truth = np.zeros(hot.shape, bool)
        for mask in decode_instances(row.annotation, hot.shape):
            truth |= mask.astype(bool)
        recall.append(hot[truth].mean())
        false_forged.append(hot[~truth].mean())
    big = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)
    start = time.process_time()
    compute_evidence(big, spec)
    big_s = time.process_time() - start
    return [
        {
            "figures": len(per_mp),
            "cpu_s_per_mp_median": float(np.median(per_mp)),
            "cpu_s_per_mp_p95": float(np.percentile(per_mp, 95)),
            "target_cpu_s_per_mp": TARGET_CPU_S_PER_MP,
            "cpu_s_4000x4000": big_s,
            "copied_pixels_hot": float(np.mean(recall)) if recall else float("nan"),
            "untouched_pixels_hot_forged": float(np.mean(false_forged)) if false_forged else float("nan"),
            "pixels_hot_authentic": float(np.mean(false_authentic)) if false_authentic else float("nan"),
        }
    ]
