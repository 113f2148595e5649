"""The owner's people memory: photos filed by person across calls, kept private, read without running code."""

from __future__ import annotations

import os
import pickle
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from photo_guard import encoders as registry
from photo_guard import protect as protect_module
from photo_guard.batch import protect_files
from photo_guard.cli import cli
from photo_guard.errors import PhotoGuardError
from photo_guard.owner_state import state_dir
from photo_guard.people import PEOPLE_FILE, PeopleMemory, people_memory
from photo_guard.protect import ProtectConfig, protect_set
from tests.photo_guard.conftest import TinyEncoder, make_photo


def _two_people(n: int, d: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy embeddings around each of two orthogonal identities."""
    g = torch.Generator().manual_seed(0)
    a = torch.eye(d)[0] + 0.1 * torch.randn(n, d, generator=g)
    b = torch.eye(d)[1] + 0.1 * torch.randn(n, d, generator=g)
    return a, b


def _unit_mean(z: torch.Tensor) -> torch.Tensor:
    return F.normalize(F.normalize(z, dim=-1).sum(0), dim=-1)


def test_photos_one_at_a_time_get_their_persons_centroid_so_far():
    a, b = _two_people(3)
    memory = PeopleMemory("face")
    seen = []
    for z, who in ((a[0], 0), (b[0], 1), (a[1], 0), (b[1], 1), (a[2], 0)):
        assert memory.identify(z) == who
        centroid = memory.assign({"face": z[None], "other": -z[None]})
        seen.append(z)
        own = torch.stack([s for s, w in zip(seen, (0, 1, 0, 1, 0)) if w == who])
        assert torch.allclose(centroid["face"][0], _unit_mean(own), atol=1e-6)
        assert torch.allclose(centroid["other"][0], _unit_mean(-own), atol=1e-6)  # every encoder, same person
    assert memory.people == 2 and memory.counts["face"].tolist() == [3.0, 2.0]


def test_a_set_of_one_person_gets_the_set_centroid_as_without_a_memory():
    a, _ = _two_people(4)
    centroid = PeopleMemory("face").assign({"face": a})["face"]
    assert torch.allclose(centroid, _unit_mean(a).expand_as(a), atol=1e-6)
    with pytest.raises(PhotoGuardError, match="not among the encoders"):
        PeopleMemory("face").assign({"other": a})


def test_memory_is_private_round_trips_and_never_runs_code(tmp_path):
    a, b = _two_people(2)
    path = tmp_path / "people.pt"
    memory = PeopleMemory.load(path, "face")
    assert memory.people == 0
    memory.assign({"face": torch.cat([a, b])})
    memory.save()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = PeopleMemory.load(path, "face")
    assert again.people == 2 and torch.equal(again.sums["face"], memory.sums["face"])

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps({"sums": Payload(), "counts": {}}))
    with pytest.raises(PhotoGuardError) as err:
        PeopleMemory.load(hostile, "face")
    assert not marker.exists()
    assert str(hostile) in str(err.value) and "\n" not in str(err.value)


class _TinyFace(TinyEncoder):
    name = "tinyface"
    face = True


def test_protect_pushes_each_photo_from_its_persons_centroid(tiny_encoder, monkeypatch):
    seen = []
    dp2vl = protect_module.registry.objective("dp2vl")

    def recording(adv, clean, encs, align, centroid, target, quality_weight):
        seen.append(centroid["tiny"].detach().clone())
        return dp2vl(adv, clean, encs, align, centroid, target, quality_weight)

    monkeypatch.setattr(protect_module.registry, "objective", lambda name: recording)
    photo = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0))
    cfg = ProtectConfig(encoders=("tiny",), steps=1, eot_samples=0, device="cpu")
    memory = PeopleMemory("tiny")
    protect_set([photo], cfg, people=memory, measure_result=False)
    noisy = (photo + 0.03 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    protect_set([noisy], cfg, people=memory, measure_result=False)
    # The second call was pushed from the centroid of both photos (one person), not from its own embedding.
    both = F.normalize(memory.sums["tiny"][0], dim=-1)
    assert memory.people == 1 and torch.allclose(seen[-1][0], both, atol=1e-6)
    assert not torch.allclose(seen[0][0], both, atol=1e-4)
    assert people_memory([TinyEncoder()], None) is None  # no face encoder: nobody to tell apart


def test_protect_files_keeps_the_memory_in_private_state_only(tiny_encoder, monkeypatch, tmp_path):
    monkeypatch.setitem(registry.ENCODERS, "tinyface", _TinyFace)
    registry._CACHE.pop("tinyface", None)
    cfg = ProtectConfig(encoders=("tinyface",), steps=1, eot_samples=0, device="cpu")
    stored = state_dir() / PEOPLE_FILE
    stored.unlink(missing_ok=True)
    out = tmp_path / "shared"
    for i in range(2):  # one photo per call, as a watch folder sends them
        src = make_photo(tmp_path / f"shot{i}.png", seed=0)
        assert not protect_files([src], out, cfg).failed
    memory = PeopleMemory.load(stored, "tinyface")
    assert memory.counts["tinyface"].tolist() == [2.0]  # the same face twice: one person, two photos
    assert not any(p.name == PEOPLE_FILE for p in out.rglob("*"))
    stored.unlink()
    protect_files([make_photo(tmp_path / "off.png", seed=1)], out, replace(cfg, people=False))
    assert not stored.exists()
    args = ["protect", str(make_photo(tmp_path / "cli.png", seed=2)), "-o", str(out), "--encoders", "tinyface"]
    r = CliRunner().invoke(cli, [*args, "--steps", "1", "--device", "cpu", "--no-people"])
    assert r.exit_code == 0, r.output
    assert not stored.exists()
