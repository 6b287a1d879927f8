"""Pretrained encoder weights come only from a local file; wrong files fail loudly, naming the file."""

import pytest
import torch

from models.segmenter.networks import build_network, encoder_of, load_encoder_weights
from models.segmenter.spec import CorrSpec, ModelSpec

TIMM = ModelSpec("t", "FPN", "tu-convnext_atto")
SMP_NATIVE = ModelSpec("s", "Segformer", "mit_b0")


def _equal_encoders(a, b) -> bool:
    sa, sb = encoder_of(a).state_dict(), encoder_of(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    ("spec", "export"),
    [
        (TIMM, lambda enc: enc.model.state_dict()),  # a plain timm checkpoint (Kaggle dataset of timm weights)
        (TIMM, lambda enc: {f"encoder.{k}": v for k, v in enc.state_dict().items()}),  # smp-prefixed keys
        (SMP_NATIVE, lambda enc: enc.state_dict()),
        (ModelSpec("c", "Unet", "tu-convnext_atto", corr=CorrSpec()), lambda enc: enc.model.state_dict()),
    ],
)
def test_local_weights_round_trip(tmp_path, spec, export):
    torch.manual_seed(0)
    source = build_network(spec)
    path = tmp_path / "encoder.pth"
    torch.save(export(encoder_of(source)), path)
    torch.manual_seed(1)
    target = build_network(spec)
    assert not _equal_encoders(source, target)
    loaded = load_encoder_weights(target, path)
    assert loaded == len(encoder_of(target).state_dict()) or loaded == len(encoder_of(target).model.state_dict())
    assert _equal_encoders(source, target)


def test_safetensors_file(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    source, target = build_network(TIMM), build_network(TIMM)
    path = tmp_path / "encoder.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in encoder_of(source).model.state_dict().items()}, str(path))
    load_encoder_weights(target, path)
    assert _equal_encoders(source, target)


def test_wrong_or_missing_file_names_the_file(tmp_path):
    other = tmp_path / "mit.pth"
    torch.save(encoder_of(build_network(SMP_NATIVE)).state_dict(), other)
    with pytest.raises(ValueError, match=r"mit\.pth: only 0 of"):
        load_encoder_weights(build_network(TIMM), other)
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        load_encoder_weights(build_network(TIMM), tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk\.pth: not a readable weights file"):
        load_encoder_weights(build_network(TIMM), junk)
