"""Does a segmenter learn repetition, or the generator? Train without one figure family, score on it.

    python -m models.segmenter.holdout --model unet_convnext --family histology

Every labelled image whose synthetic-manifest ``family`` is ``--family`` is held out (its twin too:
twins share a case_id, hence a family); the model trains on all the others with its usual settings
and evidence, and its maps of the held-out family are scored with the fixed segmenter-alone rule.
Beside it, the same family's rows of the regular cross-validated OOF maps (``artifacts/oof/<model>``,
where that family was seen in training) give the in-distribution score. A model that learnt what the
generator's figures look like drops on the unseen family; one that learnt repetition does not.
Writes ``<out>/<model>-<family>.json`` and prints both rows.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from models.segmenter.config import section
from models.segmenter.evaluate import score_maps
from models.segmenter.networks import set_threads
from models.segmenter.train import fit
from shared.config import data_root
from shared.dataset import labelled_rows, load_table
from shared.folds import FOLD_COLUMNS
from shared.logs import setup_logging
from shared.maps import MapReader, MapSet

log = logging.getLogger(__name__)


def family_folds(root: str | Path, family: str) -> pd.DataFrame:
    """``folds.csv`` rows: fold 0 = the labelled images of ``family`` (manifest), fold 1 = the rest."""
    manifest_path = Path(root) / "manifest.csv"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: the hold-out check needs the synthetic manifest (family column)")
    manifest = pd.read_csv(manifest_path, dtype={"case_id": str})
    families = dict(zip(manifest["case_id"], manifest["family"], strict=True))
    rows = labelled_rows(load_table(root))
    held = rows["case_id"].map(families) == family
    if not held.any():
        raise ValueError(
            f"{manifest_path}: no labelled image of family {family!r} (have {sorted(set(families.values()))})"
        )
    return rows.assign(fold=(~held).astype(int))[FOLD_COLUMNS]


def run_holdout(
    model: str,
    family: str,
    root: str | Path,
    out: str | Path,
    oof_dir: str | Path = "artifacts/oof",
    evidence_dir: str | Path = "artifacts/evidence",
    device: str | None = None,
) -> pd.DataFrame:
    """Scores of ``family`` unseen (trained without it) and seen (regular OOF, when present)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folds = family_folds(root, family)
    folds_path = out / f"folds-{family}.csv"
    folds.to_csv(folds_path, index=False)
    result = fit(model, 0, folds_path, root, out / f"{model}-{family}", device=device, evidence_dir=evidence_dir)
    rule = dict(section()["eval"])
    rows = labelled_rows(load_table(root)).merge(folds[["uid", "fold"]], on="uid")
    held = rows[rows["fold"] == 0]
    records = []
    with MapReader(result.oof) as reader:
        records.append({"training": f"without {family}"} | score_maps(held, reader.__getitem__, **rule))
    regular = sorted((Path(oof_dir) / model).glob("fold*.npz"))
    if regular:
        maps = MapSet(regular)
        records.append({"training": f"with {family} (regular OOF)"} | score_maps(held, maps.__getitem__, **rule))
    table = pd.DataFrame.from_records(records)
    (out / f"{model}-{family}.json").write_text(json.dumps(table.to_dict("records"), indent=2, default=float) + "\n")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="entry of segmenter.models in params.yaml")
    parser.add_argument("--family", required=True, help="manifest family to hold out (e.g. histology)")
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--out", default="artifacts/holdout")
    parser.add_argument("--oof-dir", default="artifacts/oof")
    parser.add_argument("--evidence", default="artifacts/evidence")
    parser.add_argument("--device")
    args = parser.parse_args(argv)
    setup_logging()
    set_threads(section().get("threads", 0))
    table = run_holdout(
        args.model, args.family, data_root(args.root), args.out, args.oof_dir, args.evidence, args.device
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
