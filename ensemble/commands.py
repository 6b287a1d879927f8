"""Sub-commands of ``recodai`` from the ensemble layer: predict."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add this layer's sub-commands to the ``recodai`` parser."""
    p = commands.add_parser("predict", help="run the full stack on a folder of images and write submission.csv")
    p.add_argument("--images", required=True, help="folder of images (ids = paths relative to it, no suffix)")
    p.add_argument("--out", default="submission.csv")
    p.add_argument("--bundle", default="artifacts/bundle", help="bundle folder (see ensemble/bundle.py)")
    p.add_argument("--sample-submission", help="row order (default: sample_submission.csv beside the images folder)")
    p.add_argument("--device", default="cpu", help="torch device for the segmenters (cpu, cuda)")
    p.add_argument("--no-tta", action="store_true", help="disable test-time augmentation")
    p.add_argument("--time-budget", type=float, help="seconds; rows not reached in time stay authentic")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from ensemble.predict import Stack, predict_folder

    stack = Stack.from_bundle(args.bundle, device=args.device, tta=not args.no_tta)
    predict_folder(stack.annotate, args.images, args.out, args.sample_submission, time_budget_s=args.time_budget)
    print(f"submission: {args.out}")
    return 0
