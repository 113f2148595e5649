import json
import logging
import os
import stat
import traceback

import pytest
import torch

from guard_core.keys import KEY_BITS, Key, LicenceKeyError


def _secret_forms(key: Key) -> list[str]:
    """Every text form in which the secret could leak: hex, base64, the bit string, the ±1 list."""
    import base64

    raw = key._secret
    assert raw is not None
    bits = "".join(f"{b:08b}" for b in raw)
    return [raw.hex(), base64.b64encode(raw).decode(), bits, str(key.tensor().tolist())[:60]]


def test_same_passphrase_same_key():
    a, b = Key.from_passphrase("amif-demo"), Key.from_passphrase("amif-demo")
    assert a == b and torch.equal(a.tensor(), b.tensor())
    assert a.fingerprint() == b.fingerprint()


def test_different_passphrases_are_about_half_the_bits_apart():
    base = Key.from_passphrase("passphrase-0")
    distances = [base.distance(Key.from_passphrase(f"passphrase-{i}")) for i in range(1, 41)]
    mean = sum(distances) / len(distances)
    assert 118 <= mean <= 138, mean
    assert min(distances) > 90


def test_tensor_is_plus_minus_one_and_none_is_zero():
    t = Key.from_passphrase("x").tensor()
    assert t.shape == (KEY_BITS,) and set(t.unique().tolist()) == {-1.0, 1.0}
    z = Key.none().tensor()
    assert z.shape == (KEY_BITS,) and z.abs().sum() == 0
    assert Key.none() == Key.none() and Key.none() != Key.from_passphrase("x")
    assert Key.none().fingerprint() == "none"


def test_tensor_bits_follow_the_bytes():
    key = Key(bytes([0b10000000] + [0] * 31))
    t = key.tensor()
    assert t[0] == 1 and (t[1:] == -1).all()


def test_repr_str_format_and_logs_never_show_the_secret(caplog):
    key = Key.from_passphrase("top secret passphrase")
    shown = [repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("using %s", key)
        logging.getLogger("test").info(f"key={key}")
    shown.append(caplog.text)
    for text in shown:
        assert key.fingerprint() in text
        for form in _secret_forms(key):
            assert form not in text
        assert "top secret passphrase" not in text


def test_file_round_trip_mode_and_no_overwrite(tmp_path):
    key = Key.from_passphrase("amif-demo")
    path = key.save(tmp_path / "k.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "guard-core-key" and doc["version"] == 1 and doc["fingerprint"] == key.fingerprint()
    assert Key.from_file(path) == key
    with pytest.raises(LicenceKeyError, match="exists"):
        key.save(path)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind
    Key.none().save(tmp_path / "none.json")
    assert Key.from_file(tmp_path / "none.json").is_none


def test_bad_key_files_give_one_line_errors_without_content(tmp_path):
    key = Key.from_passphrase("amif-demo")
    good = json.loads(key.save(tmp_path / "k.json").read_text())
    cases = {
        "missing.json": None,
        "text.json": "not json " + good["key"],
        "format.json": json.dumps({**good, "format": "other"}),
        "version.json": json.dumps({**good, "version": 9}),
        "b64.json": json.dumps({**good, "key": "!!!" + good["key"]}),
        "short.json": json.dumps({**good, "key": "AAAA"}),
        "fp.json": json.dumps({**good, "fingerprint": "0000-0000-0000"}),
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        with pytest.raises(LicenceKeyError) as info:
            Key.from_file(path)
        message = str(info.value)
        assert name in message and "\n" not in message
        shown = message + "".join(traceback.format_exception(info.value))  # chained causes included
        for form in _secret_forms(key):
            assert form not in shown


def test_from_env(monkeypatch):
    monkeypatch.delenv("GUARD_TEST_KEY", raising=False)
    assert Key.from_env("GUARD_TEST_KEY").is_none
    with pytest.raises(LicenceKeyError, match="GUARD_TEST_KEY"):
        Key.from_env("GUARD_TEST_KEY", required=True)
    monkeypatch.setenv("GUARD_TEST_KEY", "amif-demo")
    assert Key.from_env("GUARD_TEST_KEY") == Key.from_passphrase("amif-demo")


def test_documented_derivation_is_reproducible():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from guard_core.keys import INFO_KEY, SALT

    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=INFO_KEY).derive(b"amif-demo")
    assert Key.from_passphrase("amif-demo") == Key(expected)


def test_empty_passphrase_rejected():
    with pytest.raises(LicenceKeyError):
        Key.from_passphrase("")


def test_atomic_output_modes_and_failure(tmp_path):
    from guard_core.atomic import atomic_output

    with atomic_output(tmp_path / "plain.txt") as tmp:
        tmp.write_text("x")
    assert stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode) == 0o666 & ~_current_umask()
    (tmp_path / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "keep.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "plain.txt"]
    # a writer killed mid-write left its temp; the next whole write of that file clears it, and only its temps
    (tmp_path / ".keep.txt.tmp-dead1234.txt").write_text("half")
    (tmp_path / ".other.txt.tmp-live5678.txt").write_text("someone else's")
    with atomic_output(tmp_path / "keep.txt") as tmp:
        tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.txt.tmp-live5678.txt", "keep.txt", "plain.txt"]


def _current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_a_key_file_others_can_read_is_used_with_a_warning(tmp_path):
    import os
    import warnings

    from guard_core.keys import InsecureKeyFileWarning

    path = tmp_path / "k.json"
    Key.from_passphrase("p").save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Key.from_file(path)  # 0600: no warning
    os.chmod(path, 0o644)
    with pytest.warns(InsecureKeyFileWarning, match="chmod 600"):
        assert Key.from_file(path) == Key.from_passphrase("p")
