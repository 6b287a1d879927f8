"""DVC stage ``match``: the matcher on every labelled image, written for the ensemble.

``python -m models.matcher.oof --root ROOT --out artifacts/oof/matcher`` writes (docs/ARCHITECTURE.md):

- ``matcher.npz`` + ``matcher.index.csv``: probability maps at native size keyed by uid (``shared.maps``);
- ``features.csv``: ``uid`` + ``matcher_*`` image-level features;
- ``instances.csv``: ``uid, annotation`` (the matcher's operations as RLE, or ``authentic``).

The matcher has nothing to train, so one file covers every labelled uid. The log ends with the
matcher-alone oF1 on these images (forged and authentic rows separately).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.matcher.batch import Task, run_tasks
from models.matcher.config import MatcherParams
from models.matcher.features import FEATURE_NAMES, prefixed_features
from shared.config import data_root, param
from shared.dataset import labelled_rows, load_table, true_masks
from shared.logs import setup_logging
from shared.maps import MapWriter
from shared.metric import row_score
from shared.rle import AUTHENTIC, encode_instances

log = logging.getLogger("models.matcher.oof")


def write_oof(root: str | Path, out: str | Path, params: MatcherParams, jobs: int) -> pd.DataFrame:
    """Run the matcher on every labelled image of ``root``; returns the per-image table it wrote."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = labelled_rows(load_table(root))
    if rows.empty:
        raise ValueError(f"{root}: no labelled images (train_images/ or supplemental_images/)")
    tasks = [Task(key=str(r.uid), path=str(r.image_path), want_prob=True) for r in rows.itertuples(index=False)]
    records = []
    start = time.perf_counter()
    with MapWriter(out / "matcher.npz") as maps:
        for row, outcome in zip(rows.itertuples(index=False), run_tasks(tasks, params, jobs), strict=True):
            shape = (int(row.height), int(row.width))
            prob = outcome.prob if outcome.prob is not None else np.zeros(shape, np.uint8)
            maps.add(outcome.key, prob)
            records.append(
                {
                    "uid": outcome.key,
                    "annotation": outcome.annotation,
                    **prefixed_features(outcome.features),
                    "_seconds": outcome.seconds,
                    "_error": outcome.error or "",
                }
            )
    table = pd.DataFrame.from_records(records)
    columns = ["uid", *prefixed_features(dict.fromkeys(FEATURE_NAMES, 0.0))]
    table[columns].to_csv(out / "features.csv", index=False)
    table[["uid", "annotation"]].to_csv(out / "instances.csv", index=False)
    elapsed = time.perf_counter() - start
    log.info("%d images in %.1f s (%.2f s/image with %d job(s))", len(table), elapsed, elapsed / len(table), jobs)
    _log_score(rows, table)
    return table


def _log_score(rows: pd.DataFrame, table: pd.DataFrame) -> None:
    """Matcher-alone oF1 on the labelled images, for people reading the stage log."""
    scores, labels = [], []
    for row, annotation in zip(rows.itertuples(index=False), table["annotation"], strict=True):
        truth = AUTHENTIC if row.label == "authentic" else encode_instances(true_masks(pd.Series(row._asdict())))
        scores.append(row_score(truth, annotation, f"[{row.height}, {row.width}]"))
        labels.append(row.label)
    scores, labels = np.array(scores), np.array(labels)
    authentic = labels == "authentic"
    log.info(
        "matcher alone on %d labelled images: oF1 %.4f (forged %.4f over %d, authentic kept %.4f over %d)",
        len(scores),
        scores.mean(),
        scores[~authentic].mean() if (~authentic).any() else float("nan"),
        int((~authentic).sum()),
        scores[authentic].mean() if authentic.any() else float("nan"),
        int(authentic.sum()),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--out", default="artifacts/oof/matcher")
    parser.add_argument("--jobs", type=int, help="worker processes (default: matcher.jobs)")
    args = parser.parse_args(argv)
    setup_logging()
    params = MatcherParams.from_dict(param("matcher"))
    write_oof(data_root(args.root), args.out, params, args.jobs or params.jobs)


if __name__ == "__main__":
    main()
