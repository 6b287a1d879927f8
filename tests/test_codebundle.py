import subprocess
import sys

from kaggle_kernels.codebundle import collect, render
from kaggle_kernels.metadata import check_kernel_metadata, dataset_metadata, kernel_metadata


def test_prediction_bundle_holds_inference_code_only():
    modules = collect(["ensemble.predict"])
    for needed in ("ensemble.predict", "ensemble.instances", "ensemble.meta_model", "shared.rle", "shared", "ensemble"):
        assert needed in modules, needed
    for training in ("ensemble.meta", "ensemble.tune", "ensemble.report", "shared.folds"):
        assert training not in modules, training


def test_rendered_script_runs_without_the_repo(tmp_path):
    root = tmp_path / "project"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "__init__.py").write_text("")
    (root / "shared" / "greet.py").write_text(
        "def main():\n    from shared.words import WORD\n    print(WORD)\n    return 0\n"
    )
    (root / "shared" / "words.py").write_text("WORD = 'bundled'\n")
    script = tmp_path / "kernel.py"
    script.write_text(render(collect(["shared.greet"], root), "shared.greet:main", root=root))
    run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "bundled"


def test_metadata_follows_the_cli_fields():
    kernel = kernel_metadata("alice", "Recodai Inference", "inference.py", "comp", ["recodai-weights"], gpu=True)
    assert kernel["id"] == "alice/recodai-inference"
    assert kernel["enable_internet"] == "false" and kernel["dataset_sources"] == ["alice/recodai-weights"]
    assert check_kernel_metadata(kernel) == []
    assert check_kernel_metadata({**kernel, "id": "bad id", "colour": 1})
    assert dataset_metadata("alice", "recodai-weights", "w")["id"] == "alice/recodai-weights"
