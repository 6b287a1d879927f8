"""The layering rules hold: data flows one way and inference code imports nothing training needs."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(folder: Path) -> dict[str, set[str]]:
    """Top-level-ish module names imported by each file under ``folder``."""
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("shared", ("models", "ensemble", "kaggle_kernels")),
        ("models/matcher", ("models.segmenter", "ensemble", "kaggle_kernels")),
        ("models/segmenter", ("models.matcher", "ensemble", "kaggle_kernels")),
        ("ensemble", ("kaggle_kernels",)),
    ],
)
def test_data_flows_one_way(folder, forbidden):
    if not (ROOT / folder).is_dir():
        pytest.skip(f"{folder} does not exist yet")
    for path, names in imported_packages(ROOT / folder).items():
        bad = sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))
        assert not bad, f"{path} imports {bad}"


TRAINING_ONLY = ("sklearn", "albumentations", "dvc", "hypothesis", "matplotlib")


def test_prediction_path_imports_nothing_training_needs():
    blocker = "; ".join(f"sys.modules[{m!r}] = None" for m in TRAINING_ONLY)
    code = f"import sys; {blocker}; import ensemble.predict, ensemble.meta_model"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
