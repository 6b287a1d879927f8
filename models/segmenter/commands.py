"""``recodai`` sub-commands of the segmenters: ``segment`` (maps + pictures) and ``segmenter-report``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's sub-commands to the ``recodai`` parser."""
    p = commands.add_parser("segment", help="segmenter probability maps of images, with heat-map pictures")
    p.add_argument("images", nargs="+", help="image files and/or folders of images")
    p.add_argument("--model", help="segmenter name: use every fold checkpoint under MODELS_DIR/<model>/")
    p.add_argument("--checkpoints", nargs="+", metavar="PT", help="explicit checkpoint files (instead of --model)")
    p.add_argument("--models-dir", default="artifacts/models")
    p.add_argument("--tta", default="auto", help="none | hflip | flips | d4 | auto (the checkpoints' own set)")
    p.add_argument("--out", required=True, help="folder for maps.npz (+ index) and one PNG per image")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_segment)

    p = commands.add_parser("segmenter-report", help="OOF scores (and TTA gain) of the segmenters, with a gallery")
    p.add_argument("--models", nargs="*", help="segmenter names (default: segmenter.active)")
    p.add_argument("--root", help="data root (default: data.root in params.yaml)")
    p.add_argument("--folds", default="artifacts/folds.csv")
    p.add_argument("--oof-dir", default="artifacts/oof")
    p.add_argument("--models-dir", default="artifacts/models")
    p.add_argument("--out", default="artifacts/segmenter_report")
    p.add_argument(
        "--compare-tta", metavar="SET", help="also re-predict OOF without TTA and with SET (hflip, flips, d4)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--evidence", default="artifacts/evidence", help="precomputed evidence (the evidence stage)")
    p.set_defaults(func=cmd_report)


def cmd_segment(args: argparse.Namespace) -> int:
    from models.segmenter.pictures import segment_images

    if bool(args.model) == bool(args.checkpoints):
        raise ValueError("give either --model or --checkpoints")
    if args.model:
        from models.segmenter.test_maps import fold_checkpoints

        checkpoints = fold_checkpoints(args.models_dir, args.model)
    else:
        checkpoints = [Path(p) for p in args.checkpoints]
    tta = True if args.tta == "auto" else args.tta
    out = segment_images(args.images, checkpoints, Path(args.out), tta, args.device)
    print(f"wrote {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from models.segmenter.config import active_models
    from models.segmenter.report import write_report
    from shared.config import data_root
    from shared.evidence_maps import EvidenceStore

    table = write_report(
        args.models or active_models(),
        data_root(args.root),
        args.folds,
        args.oof_dir,
        args.models_dir,
        args.out,
        args.compare_tta,
        args.device,
        EvidenceStore(args.evidence).__getitem__ if Path(args.evidence).is_dir() else None,
    )
    print(table.to_string(index=False))
    print(f"wrote {Path(args.out) / 'report.md'}")
    return 0
