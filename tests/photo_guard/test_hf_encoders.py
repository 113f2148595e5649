"""The transformers loaders, on tiny random models of the real classes saved to a temp folder (no hub)."""

import pytest
import torch
from PIL import Image

from photo_guard.encoders.base import EncoderUnavailable

transformers = pytest.importorskip("transformers")


def _photos():
    import skimage.data

    return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    path = tmp_path_factory.mktemp("clip")
    cfg = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=336, patch_size=14
    )
    CLIPVisionModel(cfg).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory):
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    path = tmp_path_factory.mktemp("siglip")
    cfg = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=224, patch_size=16
    )
    SiglipVisionModel(cfg).save_pretrained(path)
    SiglipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(path)
    return path


def _check_preprocessing(encoder, processor, photos):
    for photo in photos:
        ref = processor(images=Image.fromarray(photo), return_tensors="pt")["pixel_values"]
        ours = encoder.preprocess(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255)
        assert ours.shape == ref.shape
        mad = (ours - ref).abs().mean().item() * float(encoder.std.mean())  # in [0, 1] pixel units
        assert mad <= 0.01, mad


def test_clip_loads_locally_matches_its_processor_and_is_differentiable(tiny_clip):
    from transformers import CLIPImageProcessor

    from photo_guard.encoders.hf import CLIPVisionEncoder

    enc = CLIPVisionEncoder(str(tiny_clip))
    assert enc.input_size == (336, 336)
    _check_preprocessing(enc, CLIPImageProcessor.from_pretrained(tiny_clip), _photos())
    x = torch.rand(2, 3, 100, 140, requires_grad=True)
    f = enc(x)
    assert f.shape == (2, 32)
    f.sum().backward()
    assert x.grad.abs().sum() > 0


def test_siglip_loads_locally_and_matches_its_processor(tiny_siglip):
    from transformers import SiglipImageProcessor

    from photo_guard.encoders.hf import SiglipVisionEncoder

    enc = SiglipVisionEncoder(str(tiny_siglip))
    _check_preprocessing(enc, SiglipImageProcessor.from_pretrained(tiny_siglip), _photos())
    assert enc(torch.rand(1, 3, 64, 64)).shape == (1, 32)


def test_missing_model_is_a_clear_unavailable(tmp_path, monkeypatch):
    from photo_guard.encoders.hf import CLIPVisionEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderUnavailable, match="no local copy"):
        CLIPVisionEncoder(str(tmp_path / "nowhere"))


@pytest.fixture(scope="module")
def tiny_qwen2vl(tmp_path_factory):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    path = tmp_path_factory.mktemp("qwen2vl")
    cfg = Qwen2VLConfig(
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 4,
            "mlp_ratio": 2,
            "in_chans": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 128,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 1, 1]},
        },
    )
    Qwen2VLForConditionalGeneration(cfg).save_pretrained(path)
    Qwen2VLImageProcessor(size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}).save_pretrained(path)
    return path


def test_qwen2vl_vision_tower_loads_alone_and_matches_its_processor(tiny_qwen2vl):
    from transformers import Qwen2VLImageProcessor

    from photo_guard.encoders.hf import Qwen2VLVisionEncoder

    enc = Qwen2VLVisionEncoder(str(tiny_qwen2vl))
    processor = Qwen2VLImageProcessor.from_pretrained(tiny_qwen2vl)
    for photo in _photos():
        ref = processor(images=Image.fromarray(photo), return_tensors="pt")
        flat, grid = enc.patchify(enc.preprocess(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255))
        assert torch.equal(grid, ref["image_grid_thw"])
        mad = (flat - ref["pixel_values"]).abs().mean().item() * float(enc.std.mean())
        assert mad <= 0.01, mad
    x = torch.rand(2, 3, 70, 90, requires_grad=True)
    f = enc(x)
    assert f.shape[0] == 2 and torch.isfinite(f).all()
    f.sum().backward()
    assert x.grad.abs().sum() > 0
