"""Sub-commands of ``recodai`` that need only ``shared``: score, validate-submission, make-solution, check-data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from shared.config import data_root
from shared.metric import score_files


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's sub-commands to the ``recodai`` parser."""
    p = commands.add_parser("score", help="score a submission against a Kaggle-format solution (oF1)")
    p.add_argument("solution", help="solution CSV: case_id,annotation,shape")
    p.add_argument("submission", help="submission CSV: case_id,annotation")
    p.add_argument("--per-row", metavar="CSV", help="write per-row scores here")
    p.add_argument(
        "--groups", metavar="MANIFEST", help="manifest CSV with case_id: print the score per value of its columns"
    )
    p.add_argument(
        "--by", action="append", metavar="COLUMN", help="manifest column(s) to group by (default: all but case_id)"
    )
    p.add_argument("--json", metavar="PATH", help="write the breakdown as JSON")
    p.set_defaults(func=cmd_score)

    p = commands.add_parser("validate-submission", help="check a submission will be accepted and scored by Kaggle")
    p.add_argument("submission")
    p.add_argument("--images", required=True, help="folder of the images the submission covers")
    p.set_defaults(func=cmd_validate)

    p = commands.add_parser("make-solution", help="solution.csv from a labelled (train-layout) data root")
    p.add_argument("root", nargs="?", help="data root (default: data.root in params.yaml)")
    p.add_argument("--split", choices=["train", "supplemental"], default="train")
    p.add_argument("--out", default="solution.csv")
    p.set_defaults(func=cmd_make_solution)

    p = commands.add_parser("check-data", help="decode every image and mask of a data root and report every problem")
    p.add_argument("root", nargs="?", help="data root (default: data.root in params.yaml)")
    p.set_defaults(func=cmd_check_data)

    from shared.synth.cli import register as register_synth  # light: argparse only

    register_synth(commands)


def cmd_score(args: argparse.Namespace) -> int:
    report = score_files(args.solution, args.submission)
    breakdown = report.breakdown()
    for key, value in breakdown.items():
        print(f"{key:<20} {value:.6f}" if isinstance(value, float) else f"{key:<20} {value}")
    if args.per_row:
        report.per_row.to_csv(args.per_row, index=False)
    if args.groups:
        manifest = pd.read_csv(args.groups, dtype={"case_id": str})
        for column in args.by or [c for c in manifest.columns if c != "case_id"]:
            print(f"\nby {column}:\n{report.by_group(manifest, column).to_string(index=False)}")
    if args.json:
        Path(args.json).write_text(json.dumps(breakdown, indent=2))
    print(f"oF1 {report.score:.6f}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from shared.submission import validate_submission_file

    problems = validate_submission_file(args.submission, args.images)
    for problem in problems:
        print(problem)
    print(f"{args.submission}: {'INVALID, ' + str(len(problems)) + ' problem(s)' if problems else 'valid'}")
    return 1 if problems else 0


def cmd_make_solution(args: argparse.Namespace) -> int:
    from shared.solution import make_solution

    solution = make_solution(data_root(args.root), args.split)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    solution.to_csv(args.out, index=False)
    forged = int((solution["annotation"] != "authentic").sum())
    print(f"wrote {args.out}: {len(solution)} rows ({forged} forged)")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from shared.dataset import discover

    table = discover(data_root(args.root), deep=True)
    counts = table.groupby(["split", "label"], observed=True).size()
    print("\n".join(f"{split}/{label}: {n}" for (split, label), n in counts.items()))
    print(f"{data_root(args.root)}: ok, {len(table)} images")
    return 0
