"""The prediction bundle: everything ``recodai predict`` (and the Kaggle kernel) needs, in one folder.

```
bundle/
  bundle.json          components, segmenter checkpoint lists, file names
  fusion.json          tuned fusion config (ensemble.fusion.FusionConfig)
  meta_model.txt       LightGBM meta-classifier + meta.json (features, calibration)
  matcher.json         the matcher's parameters
  checkpoints/<model>/*.pt
```
Local prediction reads exactly what a Kaggle dataset built from this folder holds.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ensemble.settings import components_from_params
from shared.config import load_params
from shared.logs import setup_logging

if TYPE_CHECKING:
    from models.matcher import MatcherParams

log = logging.getLogger(__name__)
BUNDLE_FILE = "bundle.json"


@dataclass
class Bundle:
    """A bundle folder, opened."""

    folder: Path
    components: list[str]
    segmenters: dict[str, list[Path]]
    matcher_params: dict | None

    @property
    def fusion_path(self) -> Path:
        return self.folder / "fusion.json"

    @classmethod
    def open(cls, folder: str | Path) -> Bundle:
        folder = Path(folder)
        try:
            info = json.loads((folder / BUNDLE_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{folder / BUNDLE_FILE}: cannot read bundle description ({exc})") from exc
        segmenters = {name: [folder / p for p in paths] for name, paths in info.get("segmenters", {}).items()}
        for paths in segmenters.values():
            for path in paths:
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: checkpoint listed in {folder / BUNDLE_FILE} is missing")
        matcher = json.loads((folder / "matcher.json").read_text()) if (folder / "matcher.json").is_file() else None
        bundle = cls(folder, list(info["components"]), segmenters, matcher)
        if matcher is not None:
            bundle.checked_matcher_params()
        return bundle

    def checked_matcher_params(self) -> MatcherParams:
        """The matcher's parameters, checked against this version of the matcher: a stale bundle must stop
        the run with its path, not turn every row authentic one failure at a time."""
        from models.matcher import MatcherParams

        try:
            return MatcherParams.coerce(self.matcher_params)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{self.folder / 'matcher.json'}: {exc}; the bundle was built for another version of the matcher:"
                " rebuild it (dvc repro bundle)"
            ) from exc


def assemble(out: str | Path, meta_dir: str | Path, fusion_dir: str | Path, models_dir: str | Path) -> Path:
    """Copy the tuned fusion, the meta model, matcher params and the prediction fold checkpoints into ``out``.

    Which fold checkpoints: ``segmenter.predict_folds`` (:func:`models.segmenter.test_maps.prediction_checkpoints`).
    """
    out, models_dir = Path(out), Path(models_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for folder, name in ((fusion_dir, "fusion.json"), (meta_dir, "meta_model.txt"), (meta_dir, "meta.json")):
        source = Path(folder) / name
        if not source.is_file():
            raise FileNotFoundError(f"{source}: missing; run the meta and fuse stages first")
        shutil.copy2(source, out / name)
    params = load_params()
    components = components_from_params()
    segmenters: dict[str, list[str]] = {}
    for name in components:
        if name == "matcher":
            (out / "matcher.json").write_text(json.dumps(params["matcher"], indent=2, sort_keys=True))
            continue
        from models.segmenter.test_maps import prediction_checkpoints  # here: opening a bundle needs no torch

        checkpoints = prediction_checkpoints(models_dir, name)
        segmenters[name] = []
        for checkpoint in checkpoints:
            target = out / "checkpoints" / name / checkpoint.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkpoint, target)
            segmenters[name].append(target.relative_to(out).as_posix())
    (out / BUNDLE_FILE).write_text(json.dumps({"components": components, "segmenters": segmenters}, indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Assemble the prediction bundle.")
    parser.add_argument("--meta-dir", default="artifacts/ensemble/meta")
    parser.add_argument("--fusion-dir", default="artifacts/ensemble/fusion")
    parser.add_argument("--models-dir", default="artifacts/models")
    parser.add_argument("--out", default="artifacts/bundle")
    args = parser.parse_args(argv)
    setup_logging()
    log.info("bundle written to %s", assemble(args.out, args.meta_dir, args.fusion_dir, args.models_dir))


if __name__ == "__main__":
    main()
