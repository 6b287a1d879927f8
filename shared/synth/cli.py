"""``recodai synth`` / ``python -m shared.synth``: write the synthetic dataset (and a preview sheet)."""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", help="output data root (default: data.root in params.yaml)")
    parser.add_argument(
        "--n", type=int, metavar="N", help="train cases (supplemental and test counts scale with the profile's ratios)"
    )
    parser.add_argument("--seed", type=int, help="seed (default: synth.seed)")
    parser.add_argument("--profile", choices=["demo", "full"], help="size profile (default: profile in params.yaml)")
    parser.add_argument("--workers", type=int, help="processes (default: the profile's workers)")
    parser.add_argument("--preview", metavar="PNG", help="also write a contact sheet with ground-truth outlines")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset under OUT")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``synth`` to the ``recodai`` parser."""
    parser = commands.add_parser("synth", help="generate the synthetic forgery dataset in the Kaggle layout")
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shared.config import data_root
    from shared.synth.config import load_config, scaled_counts
    from shared.synth.preview import write_preview
    from shared.synth.writer import generate

    config = load_config(args.profile, seed=args.seed)
    if args.n is not None:
        config = scaled_counts(config, args.n)
    out = data_root(args.out)
    start = time.perf_counter()
    manifest = generate(out, config, workers=args.workers, overwrite=args.overwrite)
    seconds = time.perf_counter() - start
    print(f"wrote {out}: {config.n_images} images ({len(manifest)} cases) in {seconds:.1f} s")
    if args.preview:
        print(f"preview: {write_preview(out, args.preview)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from shared.logs import setup_logging

    parser = argparse.ArgumentParser(prog="python -m shared.synth", description=__doc__.splitlines()[0])
    add_arguments(parser)
    setup_logging()
    return run(parser.parse_args(argv))
