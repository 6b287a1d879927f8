"""Synthetic dataset generation speed: the demo profile written to a temporary folder, as `make demo` does."""

from __future__ import annotations

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
            start = time.perf_counter()
            manifest = generate(Path(tmp) / "synthetic", config, workers=workers)
            seconds = time.perf_counter() - start
            size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
        rows.append(
            {
                "what": f"demo profile, {workers} worker(s)",
                "images": config.n_images,
                "cases": len(manifest),
                "seconds": seconds,
                "images_per_s": config.n_images / seconds,
                "target_images_per_s": 20.0,
                "disk_mb": size_mb,
            }
        )
    return rows
