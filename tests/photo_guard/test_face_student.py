"""The robust face student: its loader (plain tensors only) and its ARD training, on tiny inputs."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from photo_guard.encoders import EncoderUnavailable
from photo_guard.encoders.distill import _attack, distill_loss, reference_mean, train_student
from photo_guard.encoders.student import REFERENCE, FaceStudent, FaceStudentEncoder


def _save(net: FaceStudent, path, reference: torch.Tensor | None = None) -> None:
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    save_file(state if reference is None else state | {REFERENCE: reference}, str(path))


def test_student_loads_from_safetensors_and_embeds_aligned_faces(tmp_path):
    torch.manual_seed(0)
    net = FaceStudent(width=4, dim=16).eval()
    _save(net, tmp_path / "s.safetensors")
    enc = FaceStudentEncoder(str(tmp_path / "s.safetensors"))
    assert enc.face and enc.net.stem[0].out_channels == 4
    x = torch.rand(2, 3, 150, 130)
    z = enc.embed(x)  # no alignment: the centred fallback crop
    assert z.shape == (2, 16)
    face = torch.nn.functional.interpolate(x, size=(112, 112))
    align = torch.tensor([[112 / 130, 0, 0], [0, 112 / 150, 0]]).expand(2, 2, 3)
    assert torch.allclose(enc(x, align), net(face).float(), atol=0.1)  # float16 weights, bilinear vs nearest warp
    assert torch.equal(enc.embed(x), enc(x))  # a file without its reference mean: not centred


def test_student_is_centred_by_the_reference_mean_in_its_own_file(tmp_path):
    torch.manual_seed(0)
    net = FaceStudent(width=4, dim=16).eval()
    faces = (torch.rand(6, 3, 112, 112) * 255).to(torch.uint8)
    mean = reference_mean(net, faces, batch=4)
    with torch.no_grad():
        assert torch.allclose(mean, net(faces.float() / 255).mean(0), atol=1e-5)
    _save(net, tmp_path / "s.safetensors", mean)
    enc = FaceStudentEncoder(str(tmp_path / "s.safetensors"))
    x = torch.rand(2, 3, 112, 112)
    assert torch.allclose(enc.embed(x), enc(x) - mean, atol=1e-6)


def test_student_weights_that_are_not_plain_tensors_are_refused(tmp_path):
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"stem.0.weight": torch.zeros(1)}))
    with pytest.raises(Exception) as info:
        FaceStudentEncoder(str(bad))
    assert not isinstance(info.value, (pickle.UnpicklingError, AttributeError))
    with pytest.raises(EncoderUnavailable, match="no trained face student"):
        FaceStudentEncoder(str(tmp_path / "missing.safetensors"))


def test_ard_attack_raises_the_distillation_loss_and_training_lowers_it():
    torch.manual_seed(0)
    faces = (torch.rand(48, 3, 112, 112) * 255).to(torch.uint8)
    teacher = torch.randn(48, 8)
    net = FaceStudent(width=4, dim=8).eval()
    x = faces[:8].float() / 255
    adv = _attack(net, x, teacher[:8], 8 / 255, 3)
    with torch.no_grad():
        before = distill_loss(net(x), teacher[:8]).mean()
        after = distill_loss(net(adv), teacher[:8]).mean()
    assert after > before
    pool = {"faces": faces, "teacher": teacher}
    _, log = train_student(pool, epochs=3, eps=2 / 255, width=4, batch=8, lr=1e-2, held_out=8)
    assert len(log) == 3 and log[-1]["train_loss"] < log[0]["train_loss"]
    assert {"val_cos", "val_cos_attacked"} <= set(log[0])
