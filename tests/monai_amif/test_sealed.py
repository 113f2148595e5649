"""Sealed model files: the right key opens them exactly, anything else gets the marked preview, nothing leaks."""

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from guard_core.keys import Key, LicenceKeyError
from monai_amif.checkpoint import build_network, save_model
from monai_amif.cli import cli
from monai_amif.loading import key_fingerprint, load_model
from monai_amif.sealed import MarkedPreview, seal_model


@pytest.fixture(scope="module")
def plain(tmp_path_factory, demo_key):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seal") / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), path, key_fingerprint=demo_key.fingerprint())
    return path


def test_key_encrypt_round_trip_and_failures():
    k, other = Key.from_passphrase("a"), Key.from_passphrase("b")
    blob = k.encrypt(b"weights", b"header")
    assert k.decrypt(blob, b"header") == b"weights" and blob != k.encrypt(b"weights", b"header")  # fresh salt/nonce
    for key, ctx, data in (
        (other, b"header", blob),
        (k, b"other header", blob),
        (Key.none(), b"header", blob),
        (k, b"header", blob[:-1] + bytes([blob[-1] ^ 1])),
    ):
        with pytest.raises(LicenceKeyError) as err:
            key.decrypt(data, ctx)
        assert "a" not in err.value.args[0].split() and "weights" not in str(err.value)
    with pytest.raises(LicenceKeyError):
        Key.none().encrypt(b"x")


def test_sealed_model_opens_only_with_its_key(plain, demo_key, tmp_path):
    sealed = seal_model(plain, demo_key, tmp_path / "model.sealed.pt")
    raw = sealed.read_bytes()
    assert demo_key.tensor().numpy().tobytes() not in raw
    assert key_fingerprint(sealed) == demo_key.fingerprint()
    image = torch.rand(2, 2, 32, 32)
    right = demo_key.tensor().expand(2, -1)
    with torch.no_grad():
        assert torch.equal(load_model(sealed, key=demo_key)(image, right), load_model(plain)(image, right))
        for key in (None, Key.generate()):
            net = load_model(sealed, key=key)
            assert isinstance(net, MarkedPreview) and not list(net.parameters())
            out = net(image, right)  # a key tensor changes nothing: there is no learned path to unlock
            mask = net.template_at(32, 32)[:, :1]
            assert out.shape == (2, 1, 32, 32), out.shape
            assert (out * mask - net.template_at(32, 32)[:, 1:] * mask).abs().max() < 1e-6


def test_seal_refuses_another_key_and_non_models(plain, tmp_path):
    with pytest.raises(ValueError, match="accepts key"):
        seal_model(plain, Key.from_passphrase("someone else"), tmp_path / "x.pt")
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": 1}, bogus)
    with pytest.raises(ValueError, match="not an AMIF model"):
        seal_model(bogus, Key.from_passphrase("x"), tmp_path / "y.pt")


def test_cli_seal_then_fuse(plain, pair_folder, tmp_path, monkeypatch):
    for name in ("AMIF_PASSPHRASE", "AMIF_KEY_FILE", "AMIF_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    sealed = tmp_path / "model.sealed.pt"
    assert runner.invoke(cli, ["seal", "--weights", str(plain), "-o", str(sealed)]).exit_code != 0  # no key
    monkeypatch.setenv("AMIF_PASSPHRASE", "amif-demo")
    res = runner.invoke(cli, ["seal", "--weights", str(plain), "-o", str(sealed)])
    assert res.exit_code == 0 and "amif-demo" not in res.output, res.output
    again = runner.invoke(cli, ["seal", "--weights", str(plain), "-o", str(sealed)])
    assert again.exit_code != 0 and "exists" in again.output
    mri, pet = pair_folder / "PET-MRI" / "MRI" / "000.png", pair_folder / "PET-MRI" / "PET" / "000.png"
    outs = {}
    for name, weights in (("plain", plain), ("sealed", sealed)):
        outs[name] = tmp_path / f"{name}.png"
        r = runner.invoke(cli, ["fuse", str(mri), str(pet), "-o", str(outs[name]), "--weights", str(weights)])
        assert r.exit_code == 0 and "licensed" in r.output, r.output
    assert Image.open(outs["plain"]).tobytes() == Image.open(outs["sealed"]).tobytes()
    monkeypatch.delenv("AMIF_PASSPHRASE")
    r = runner.invoke(cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "nokey.png"), "--weights", str(sealed)])
    assert r.exit_code == 0 and "marked" in r.output


def test_bundle_runs_a_sealed_model(tmp_path, sample_pet_input, shipped_weights, demo_key, monkeypatch):
    """configs/inference_sealed.json on top of inference.json: the key opens the sealed model in the bundle too."""
    import numpy as np
    from monai.bundle import ConfigWorkflow

    from monai_amif.deploy import BUNDLE

    sealed = seal_model(shipped_weights, demo_key, tmp_path / "model.sealed.pt")
    outs = {}
    for tag, passphrase, model in (
        ("plain", "amif-demo", shipped_weights),
        ("sealed", "amif-demo", sealed),
        ("sealed_nokey", "", sealed),
    ):
        monkeypatch.setenv("AMIF_PASSPHRASE", passphrase)
        monkeypatch.delenv("AMIF_KEY_FILE", raising=False)
        configs = [str(BUNDLE / "configs" / "inference.json")]
        if model == sealed:
            configs.append(str(BUNDLE / "configs" / "inference_sealed.json"))
        wf = ConfigWorkflow(
            config_file=configs,
            workflow_type="infer",
            bundle_root=str(BUNDLE),
            input_dir=str(sample_pet_input),
            output_dir=str(tmp_path / tag),
            model_path=str(model),
        )
        wf.initialize()
        wf.run()
        wf.finalize()
        outs[tag] = np.asarray(Image.open(tmp_path / tag / "PET-MRI" / "s1.png"), dtype=np.int16)
    assert np.array_equal(outs["plain"], outs["sealed"])
    assert np.abs(outs["sealed_nokey"] - outs["sealed"]).mean() > 5
