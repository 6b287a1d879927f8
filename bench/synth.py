"""Synthetic dataset generation speed: the demo profile written to a temporary folder, as `make demo` does.

Wall-clock rates depend on what else runs on the machine; the 1-worker row also reports images per
CPU-second of this process, and every row the 1-minute load average at its end.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from shared.synth.config import load_config
from shared.synth.writer import generate


def run() -> list[dict]:
    config = load_config("demo")
    rows = []
    for workers in sorted({1, config.workers}):
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu_start = time.perf_counter(), time.process_time()
            manifest = generate(Path(tmp) / "synthetic", config, workers=workers)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
        rows.append(
            {
                "what": f"demo profile, {workers} worker(s)",
                "images": config.n_images,
                "cases": len(manifest),
                "seconds": seconds,
                "images_per_s": config.n_images / seconds,
                # CPU time of this process: meaningful for 1 worker, robust to other jobs sharing the cores
                "images_per_cpu_s": config.n_images / cpu if workers == 1 else "",
                "load_avg_1min": os.getloadavg()[0],
                "target_images_per_s": 20.0,
                "disk_mb": size_mb,
            }
        )
    return rows
