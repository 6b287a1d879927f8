import subprocess
import sys

import pytest

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


def test_build_inference_kernel(tmp_path):
    import json

    from kaggle_kernels.build import build_inference, kernel_settings, pinned
    from shared.config import load_params

    params = load_params()
    folder = build_inference(tmp_path / "inference", params)
    script = (folder / "inference.py").read_text()
    assert "'ensemble/predict.py'" in script and "'shared/rle.py'" in script
    assert "'ensemble/tune.py'" not in script
    compile(script, "inference.py", "exec")
    metadata = json.loads((folder / "kernel-metadata.json").read_text())
    assert check_kernel_metadata(metadata) == []
    assert metadata["code_file"] == "inference.py" and metadata["enable_internet"] == "false"
    settings = kernel_settings(params)
    assert settings["wheel_modules"]["ttach"] == pinned("ttach") == "ttach==0.0.3"
    # the OCR text detector's wheels come from requirements-ocr.txt, so the offline kernel masks text too
    assert (
        settings["wheel_modules"]["rapidocr_onnxruntime"]
        == pinned("rapidocr_onnxruntime")
        == "rapidocr-onnxruntime==1.4.4"
    )
    with pytest.raises(KeyError, match="not pinned"):
        pinned("no-such-package")
    assert settings["time_budget_s"] == params["kaggle"]["inference"]["time_budget_hours"] * 3600


def test_build_training_kernels_one_per_active_segmenter(tmp_path):
    import json

    from kaggle_kernels.build import build_training_kernels
    from shared.config import load_params

    params = load_params()
    folders = build_training_kernels(tmp_path, params)
    assert [f.name for f in folders] == [f"train-{m.replace('_', '-')}" for m in params["segmenter"]["active"]]
    for folder, model in zip(folders, params["segmenter"]["active"], strict=True):
        script = (folder / "train.py").read_text()
        compile(script, "train.py", "exec")
        assert "'kaggle_kernels/train_entry.py'" in script and f'"model": "{model}"' in script
        metadata = json.loads((folder / "kernel-metadata.json").read_text())
        assert check_kernel_metadata(metadata) == []
        assert metadata["enable_gpu"] == "true" and metadata["enable_internet"] == "false"
        slugs = {s.split("/")[1] for s in metadata["dataset_sources"]}
        assert slugs == {params["kaggle"]["datasets"][k] for k in ("code", "wheels", "pretrained")}
        assert metadata["competition_sources"] == [params["kaggle"]["competition"]]
