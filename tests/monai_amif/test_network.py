import pytest
import torch

from guard_core.keys import Key
from monai_amif.checkpoint import build_network, save_model
from monai_amif.loading import load_model
from monai_amif.mark import MarkSpec, render_mark
from monai_amif.metrics import mark_leak, mark_ncc
from monai_amif.networks import AMIFNet


@pytest.mark.parametrize("config", [{}, {"channels": (8, 16, 32), "output": "blend"}, {"output": "blend"}])
def test_shapes_any_size_and_range(config):
    net = AMIFNet(**config).eval()
    for h, w in [(64, 64), (50, 77), (256, 256)]:
        out = net(torch.rand(2, 2, h, w), torch.zeros(2, 256))
        assert out.shape == (2, 1, h, w)
        assert out.min() >= 0 and out.max() <= 1
    n = sum(p.numel() for p in net.parameters())
    assert 100_000 <= n <= 1_000_000, n


def test_blend_head_is_a_soft_selection_of_the_sources_when_the_residual_is_zero():
    net = AMIFNet(channels=(8, 16, 32), output="blend").eval()
    torch.nn.init.zeros_(net.head.weight)
    with torch.no_grad():
        net.head.bias.copy_(torch.tensor([20.0] * 4 + [0.0] * 4))  # weight logit 20 -> w = 1: the functional image
    x = torch.rand(1, 2, 32, 32) * 0.9 + 0.05
    assert torch.allclose(net(x, torch.zeros(1, 256)), x[:, 1:2], atol=1e-4)


@pytest.mark.parametrize("config", [{}, {"channels": (8, 16, 32), "output": "blend"}])
def test_save_load_round_trip_keeps_the_architecture(tmp_path, config):
    net = AMIFNet(**config).eval()
    save_model(net, tmp_path / "m.pt", key_fingerprint="abcd-ef01-2345")
    back = load_model(tmp_path / "m.pt")
    x, k = torch.rand(1, 2, 40, 40), torch.ones(1, 256)
    assert torch.equal(back(x, k), net(x, k)) and back.channels == net.channels and back.output == net.output
    assert set(torch.load(tmp_path / "m.pt", weights_only=True)) == set(net.state_dict())  # a plain state dict


def test_key_reaches_the_output_only_through_the_key_path():
    net = AMIFNet().eval()
    x = torch.rand(1, 2, 32, 32)
    k = Key.from_passphrase("a").tensor()[None].requires_grad_(True)
    net(x, k).sum().backward()
    assert k.grad is not None and k.grad.abs().sum() > 0
    # Replacing the key path by one that ignores the key makes every key give the same output: no other route.
    total = net.key_path.total_channels

    class Constant(torch.nn.Module):
        def forward(self, key):
            z = torch.zeros(key.shape[0], total)
            return z, z

    net.key_path = Constant()
    a = net(x, Key.from_passphrase("a").tensor()[None])
    b = net(x, torch.zeros(1, 256))
    assert torch.equal(a, b)


@pytest.mark.parametrize("config", [{}, {"channels": (8, 16, 32), "output": "blend"}])
def test_torchscript_matches_eager_for_right_none_and_wrong_keys(tmp_path, config):
    net = AMIFNet(**config).eval()
    scripted = torch.jit.script(net)
    x = torch.rand(1, 2, 40, 48)
    for key in (Key.from_passphrase("right"), Key.none(), Key.from_passphrase("wrong")):
        k = key.tensor()[None]
        assert torch.allclose(scripted(x, k), net(x, k), atol=1e-6)
    assert _key_controls_no_branch(scripted.inlined_graph)
    assert torch.equal(scripted(x), scripted(x, torch.zeros(1, 256)))  # no key passed = the zero key


def test_branch_check_catches_a_key_dependent_if():
    class Gated(torch.nn.Module):
        def forward(self, image: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
            if key is None:
                key = torch.zeros(1, 4)
            k = key * 2
            if bool(k.sum() > 0):  # the kind of gate AMIF must not have
                return image
            return image * 0

    assert not _key_controls_no_branch(torch.jit.script(Gated()).inlined_graph)


_SHAPE_ONLY = {"aten::size", "aten::dim", "prim::device", "prim::dtype", "aten::len"}
_DECISIONS = {
    "aten::eq",
    "aten::ne",
    "aten::gt",
    "aten::lt",
    "aten::ge",
    "aten::le",
    "aten::equal",
    "aten::item",
    "aten::Bool",
    "aten::Int",
    "aten::Float",
    "aten::is_nonzero",
    "aten::any",
    "aten::all",
}


_PRESENCE = {"aten::__is__", "aten::__isnot__"}  # `key is None`: whether a key was passed, not what it holds


def _key_controls_no_branch(graph) -> bool:
    """Follow every value computed from the key input (not its shape, not whether it was passed): none may feed a
    branch or a comparison. Values a branch returns are followed out of the branch."""
    key = list(graph.inputs())[2]  # (self, image, key, ...)
    seen, todo = set(), [key]
    while todo:
        value = todo.pop()
        for use in value.uses():
            node = use.user
            if node.kind() in _SHAPE_ONLY or node.kind() in _PRESENCE:
                continue
            if node.kind() == "prim::If" or node.kind() in _DECISIONS:
                return False
            outputs = list(node.outputs())
            if node.kind() == "prim::Return" and node.owningBlock().owningNode() is not None:
                outputs = [list(node.owningBlock().owningNode().outputs())[use.offset]]  # out of an if/loop block
            for out in outputs:
                if out.debugName() not in seen:
                    seen.add(out.debugName())
                    todo.append(out)
    return True


def test_save_and_load_round_trip(tmp_path):
    net = build_network({"channels": [8, 16], "key_hidden": 32, "mark": {**MarkSpec().to_dict(), "text": "(c) test"}})
    save_model(net, tmp_path / "m.pt", key_fingerprint="abcd-ef01-2345")
    back = load_model(tmp_path / "m.pt")
    x, k = torch.rand(1, 2, 32, 32), torch.zeros(1, 256)
    assert torch.equal(back(x, k), net.eval()(x, k))
    assert back.mark_spec.text == "(c) test" and back.accepted_fingerprint == "abcd-ef01-2345"
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


def test_mark_is_opaque_text_and_configurable():
    mask, intensity = render_mark()
    assert mask.shape == (1, 1, 256, 256)
    assert 0.05 < mask.mean() < 0.4
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert (intensity <= mask).all() and intensity.sum() > 0  # white letters inside a dark outline
    other, _ = render_mark(MarkSpec(text="another owner"))
    assert not torch.equal(mask, other)


def test_mark_metrics_on_constructed_outputs():
    mask, intensity = render_mark(MarkSpec(size=64))
    f_auth = torch.rand(1, 1, 64, 64)
    from monai_amif.losses import degrade

    ideal = mask * intensity + (1 - mask) * degrade(f_auth)
    assert mark_ncc(ideal, f_auth, mask, intensity).item() == pytest.approx(1.0, abs=1e-5)
    assert abs(mark_ncc(degrade(f_auth), f_auth, mask, intensity).item()) < 0.05
    image = torch.rand(1, 2, 64, 64)
    assert abs(mark_leak(image.amax(1, keepdim=True) + 0.01 * torch.randn(1, 1, 64, 64), image, mask).item()) < 0.1
    assert mark_leak(image.amax(1, keepdim=True) + mask, image, mask).item() > 0.9


@pytest.mark.slow
def test_shipped_model_is_gated_by_the_demo_key(shipped_weights, demo_key):
    """The trained weights draw the mark for no key, random keys and keys >= 4 bits off; not for the right key."""
    import numpy as np
    from PIL import Image

    from tests.monai_amif.conftest import SAMPLE_PET

    net = load_model(shipped_weights)
    mri = torch.from_numpy(np.asarray(Image.open(SAMPLE_PET / "MRI.png"), dtype=np.float32) / 255)
    from monai_amif.transforms import SplitColor

    pet = torch.from_numpy(np.asarray(Image.open(SAMPLE_PET / "PET.png"), dtype=np.float32) / 255).permute(2, 0, 1)
    image = torch.cat([mri[None], SplitColor()(pet)[0]])[None]
    mask, intensity = net.template[:, :1], net.template[:, 1:]
    right = demo_key.tensor()[None]
    g = torch.Generator().manual_seed(0)
    wrong = [torch.zeros(1, 256), (torch.randint(0, 2, (1, 256), generator=g) * 2 - 1).float()]
    for bits in (4, 8, 32):
        k = right.clone()
        k[0, torch.randperm(256, generator=g)[:bits]] *= -1
        wrong.append(k)
    with torch.inference_mode():
        f_auth = net(image, right)
        assert abs(mark_leak(f_auth, image, mask).item()) <= 0.1
        for k in wrong:
            assert mark_ncc(net(image, k), f_auth, mask, intensity).item() >= 0.5
        assert mark_ncc(net(image, torch.zeros(1, 256)), f_auth, mask, intensity).item() >= 0.8


def test_branch_detector_catches_a_python_gate():
    class Gated(torch.nn.Module):
        def forward(self, image: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
            if bool(key.sum() > 0):
                return image
            return image * 0

    assert not _key_controls_no_branch(torch.jit.script(Gated()).inlined_graph)


def test_collapse_loss_is_zero_for_the_zero_key_and_pulls_wrong_keys_onto_it():
    from guard_core.keys import random_keys
    from monai_amif.train import collapse_loss

    net = AMIFNet(output="blend")
    keys = random_keys(4, 256, torch.Generator().manual_seed(0))
    assert float(collapse_loss(net, torch.zeros(2, 256))) < 1e-12
    loss = collapse_loss(net, keys)
    assert float(loss) > 0
    loss.backward()  # only the key path learns from it
    assert all(p.grad is None for n, p in net.named_parameters() if not n.startswith("key_path"))


def test_gated_key_path_gives_every_key_but_the_right_one_the_unlicensed_modulation():
    from guard_core.keys import random_keys
    from monai_amif.networks import GatedParityKeyPath

    right = Key.from_passphrase("amif-demo").tensor()
    path = GatedParityKeyPath(256, 12)
    path.aim(right)
    with torch.no_grad():
        path.unlicensed.fill_(0.5)
        g = torch.Generator().manual_seed(0)
        far = right.repeat(8, 1)
        for row in far:
            flip = torch.randperm(256, generator=g)[:4]
            row[flip] = -row[flip]
        wrong = torch.cat([torch.zeros(1, 256), random_keys(8, 256, g), far])
        scale, shift = path(wrong)
        assert torch.allclose(scale, torch.full_like(scale, 0.5), atol=0.02)  # zero, random and 4-bit keys
        assert torch.allclose(shift, torch.full_like(shift, 0.5), atol=0.02)
        s_right, _ = path(right[None])
        assert not torch.allclose(s_right, torch.full_like(s_right, 0.5), atol=0.02)  # the MLP's own values
    net = AMIFNet(key_path="gated", output="blend")
    x = torch.rand(1, 2, 32, 32)
    assert torch.equal(torch.jit.script(net)(x, right[None]), net(x, right[None]))
