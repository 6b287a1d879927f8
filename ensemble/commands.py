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
    p.add_argument(
        "--maps",
        help="folder of precomputed segmenter test maps (the test_maps stage: artifacts/test), reused where they "
        "were made by the bundle's own checkpoints",
    )
    p.add_argument("--time-budget", type=float, help="seconds; rows not reached in time stay authentic")
    p.add_argument(
        "--jobs", type=int, help="worker processes, one figure each (default predict.jobs; 0: one per available core)"
    )
    p.add_argument(
        "--figure-timeout", type=float, help="seconds per figure before it becomes authentic (predict.figure_timeout_s)"
    )
    p.add_argument(
        "--resume", action="store_true", help="keep the rows an interrupted run with this --out finished (OUT.progress)"
    )
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    import functools

    from ensemble.bundle import Bundle
    from ensemble.parallel import FigurePool
    from ensemble.predict import Stack, predict_folder
    from shared.config import param

    settings = param("predict")
    jobs = settings["jobs"] if args.jobs is None else args.jobs
    timeout = settings["figure_timeout_s"] if args.figure_timeout is None else args.figure_timeout
    Bundle.open(args.bundle)  # a missing or broken bundle fails here, with its path, before workers start
    factory = functools.partial(
        Stack.from_bundle, args.bundle, device=args.device, tta=not args.no_tta, maps_dir=args.maps
    )
    with FigurePool(factory, jobs, timeout) as pool:
        predict_folder(
            pool,
            args.images,
            args.out,
            args.sample_submission,
            checkpoint_every=int(settings["checkpoint_every"]),
            time_budget_s=args.time_budget,
            resume=args.resume,
        )
    print(f"submission: {args.out}")
    return 0
