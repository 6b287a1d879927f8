"""``recodai match``: the matcher on its own, for reviewers (overlays) and as a submission."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from models.matcher.batch import Task, run_tasks
from models.matcher.config import MatcherParams
from shared.config import param
from shared.dataset import IMAGE_SUFFIXES
from shared.rle import AUTHENTIC
from shared.submission import image_ids, ordered_ids, write_submission

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``match`` to the ``recodai`` parser."""
    p = commands.add_parser(
        "match",
        help="find copy-move duplications with the matcher alone (overlays and/or a submission)",
        description=(
            "recodai match IMAGE... --out DIR writes, per image, an overlay PNG with source->copy arrows and a "
            "JSON summary, plus DIR/instances.csv. recodai match --images DIR --submission sub.csv writes a "
            "valid submission (order from sample_submission.csv next to DIR when present)."
        ),
    )
    p.add_argument("images_list", nargs="*", metavar="IMAGE", help="image files")
    p.add_argument("--images", metavar="DIR", help="folder of images (ids = paths relative to it, no suffix)")
    p.add_argument("--out", metavar="DIR", help="write overlays, JSON summaries and instances.csv here")
    p.add_argument("--submission", metavar="CSV", help="write a Kaggle submission here")
    p.add_argument("--jobs", type=int, help="worker processes (default: matcher.jobs in params.yaml)")
    p.set_defaults(func=cmd_match)


def cmd_match(args: argparse.Namespace) -> int:
    if not args.images_list and not args.images:
        raise ValueError("give image files or --images DIR")
    if not args.out and not args.submission:
        raise ValueError("nothing to write: give --out DIR and/or --submission CSV")
    paths = _collect(args.images_list, args.images)
    params = MatcherParams.from_dict(param("matcher"))
    jobs = args.jobs or params.jobs
    out = Path(args.out) if args.out else None
    tasks = [
        Task(
            key=key,
            path=str(path),
            overlay=str(out / f"{key}.png") if out else None,
            details=str(out / f"{key}.json") if out else None,
        )
        for key, path in paths.items()
    ]
    annotations: dict[str, str] = {}
    failed = 0
    for outcome in run_tasks(tasks, params, jobs):
        annotations[outcome.key] = outcome.annotation
        failed += outcome.error is not None
    forged = sum(a != AUTHENTIC for a in annotations.values())
    if out:
        out.mkdir(parents=True, exist_ok=True)
        table = pd.DataFrame({"case_id": list(annotations), "annotation": list(annotations.values())})
        table.to_csv(out / "instances.csv", index=False)
        print(f"wrote {len(tasks)} overlay(s) and summaries to {out} (instances.csv)")
    if args.submission:
        folder = Path(args.images) if args.images else None
        sample = folder.parent / "sample_submission.csv" if folder else None
        order = ordered_ids(folder, sample) if folder else list(annotations)
        missing = sorted(set(order) - set(annotations))
        if missing:
            log.warning("%d id(s) of %s have no image; written as authentic: %s", len(missing), sample, missing[:5])
        extra = sorted(set(annotations) - set(order))
        if extra:
            log.warning("%d image(s) are not in %s and are left out: %s", len(extra), sample, extra[:5])
        write_submission(annotations, order, args.submission)
        print(f"wrote {args.submission}: {len(order)} rows")
    print(f"{forged} of {len(tasks)} image(s) forged, {failed} unreadable or failed (written as authentic)")
    return 0


def _collect(files: list[str], folder: str | None) -> dict[str, Path]:
    """``{id: path}``: folder images keyed like the submission, files keyed by stem."""
    found: dict[str, Path] = dict(image_ids(folder)) if folder else {}
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such image file")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{path}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        if path.stem in found and found[path.stem] != path:
            raise ValueError(f"{path}: id {path.stem!r} already used by {found[path.stem]}")
        found[path.stem] = path
    return found
