"""Run benchmark sections and record them: ``python -m bench.run [--only SECTION ...]``."""

from __future__ import annotations

import argparse
import importlib
import inspect

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
        "single-threaded workers; text boxes = the masking step's OCR text detector timed alone (one thread); "
        "memory = peak RSS of a fresh process on a 4000x4000 figure.",
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
    "kaggle_scale": (
        "bench.kaggle_scale",
        "Synthetic test figures (mostly compound) resampled to the real test set's sizes (log-normal, median 1.5 MP, "
        "0.1 to 16 MP), predicted through recodai predict's worker pool (warm workers) with 1 and 2 jobs: the "
        "matcher alone and the full stack of --bundle (default artifacts/bundle); one thread per worker. Projection "
        "for 3,300 figures on a 4-core notebook: hours = 3300 x CPU s per figure / 4 (independent single-thread "
        "workers, one per core); hours_from_wall_speedup repeats the measured 1 -> 2 wall speed-up from 2 to 4, "
        "pessimistic here where the 2 cores are shared with other jobs (load_avg_1min).",
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="sections to run (default: all)")
    parser.add_argument("--bundle", default="artifacts/bundle", help="prediction bundle for the kaggle_scale section")
    args = parser.parse_args(argv)
    for name in args.only or list(SECTIONS):
        module, notes = SECTIONS[name]
        print(f"bench {name} …", flush=True)
        section = importlib.import_module(module).run
        options = {"bundle": args.bundle} if "bundle" in inspect.signature(section).parameters else {}
        rows = section(**options)
        record(name, rows, notes)
        for row in rows:
            print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(f"wrote {RESULTS_MD}")


if __name__ == "__main__":
    main()
