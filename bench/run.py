"""Run benchmark sections and record them: ``python -m bench.run [--only SECTION ...]``."""

from __future__ import annotations

import argparse
import importlib

from bench.results_io import RESULTS_MD, record

SECTIONS = {
    "scorer": (
        "bench.scorer",
        "Reference = tests/reference_metric.py (pixel loops, brute-force assignment), same process.",
    ),
    "synth": (
        "bench.synth",
        "Demo profile of `recodai synth` (PNG + masks + manifest) into a temp folder; target >= 20 images/s.",
    ),
    "matcher": (
        "bench.matcher",
        "Matcher alone on <data.root>/test_images (solution.csv, manifest.csv slices); speed = CPU s per MP of "
        "single-threaded workers; memory = peak RSS of a fresh process on a 4000x4000 figure.",
    ),
    "evidence": (
        "bench.evidence",
        "Repetition evidence on <data.root>/test_images: CPU s per MP (one single-threaded process; target <= 0.5), "
        "the 4000x4000 figure, and the share of copied / untouched pixels with repeat x coherence >= 0.5.",
    ),
    "segmenter": (
        "bench.segmenter",
        "Active segmenters (params.yaml profile): train steps and Predictor.predict on figure-sized images, "
        "without TTA and with segmenter.tta.",
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="sections to run (default: all)")
    args = parser.parse_args(argv)
    for name in args.only or list(SECTIONS):
        module, notes = SECTIONS[name]
        print(f"bench {name} …", flush=True)
        rows = importlib.import_module(module).run()
        record(name, rows, notes)
        for row in rows:
            print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(f"wrote {RESULTS_MD}")


if __name__ == "__main__":
    main()
