"""Licence keys: a 256-bit secret that never shows itself.

A :class:`Key` is derived from a passphrase (or read from a key file / environment variable) with
HKDF-SHA256 and handed to networks as a ``[256]`` tensor of ±1. "No key" is a first-class value whose
tensor is all zeros, so unlicensed runs need no special case.

Derivation (documented so that any implementation can reproduce a key)::

    secret      = HKDF-SHA256(ikm=passphrase.encode("utf-8"), salt=SALT, info=INFO_KEY, length=32)
    fingerprint = HKDF-SHA256(ikm=secret, salt=SALT, info=INFO_FINGERPRINT, length=6)  -> "xxxx-xxxx-xxxx"

Only the fingerprint is ever printed. ``repr``, ``str``, exceptions and log lines never hold the secret or its bits.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import warnings
from pathlib import Path

import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .atomic import atomic_output
from .errors import GuardError

__all__ = [
    "Key",
    "LicenceKeyError",
    "InsecureKeyFileWarning",
    "KEY_BITS",
    "SALT",
    "INFO_KEY",
    "INFO_FINGERPRINT",
    "KEY_FILE_FORMAT",
]

KEY_BITS = 256
SALT = b"guard-core/licence-key/v1"
INFO_KEY = b"guard-core key bits v1"
INFO_FINGERPRINT = b"guard-core public fingerprint v1"
INFO_SEAL = b"guard-core sealed content v1"
SEAL_MAGIC = b"GCSEAL1\n"
KEY_FILE_FORMAT = "guard-core-key"
KEY_FILE_VERSION = 1


class InsecureKeyFileWarning(UserWarning):
    """A key file that other users of the machine can read."""


class LicenceKeyError(GuardError):
    """A key could not be made or read. Messages name the source, never its content."""


def _hkdf(material: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=SALT, info=info).derive(material)


class Key:
    """A 256-bit licence key, or the absence of one (:meth:`none`).

    Example:
        >>> k = Key.from_passphrase("amif-demo")
        >>> k.tensor().shape
        torch.Size([256])
        >>> Key.none().tensor().abs().sum().item()
        0.0
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None) -> None:
        if secret is not None and len(secret) != KEY_BITS // 8:
            raise LicenceKeyError(f"a key holds {KEY_BITS // 8} bytes, got {len(secret)}")
        self._secret = secret

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def none(cls) -> Key:
        """The absent key: an all-zero tensor, used by unlicensed runs."""
        return cls(None)

    @classmethod
    def generate(cls) -> Key:
        """A fresh random key from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(KEY_BITS // 8))

    @classmethod
    def from_passphrase(cls, passphrase: str) -> Key:
        if not isinstance(passphrase, str) or not passphrase:
            raise LicenceKeyError("the passphrase is empty")
        return cls(_hkdf(passphrase.encode("utf-8"), INFO_KEY, KEY_BITS // 8))

    @classmethod
    def from_env(cls, name: str, required: bool = False) -> Key:
        """Key from the passphrase in environment variable ``name``; unset or empty gives :meth:`none`."""
        value = os.environ.get(name, "")
        if not value:
            if required:
                raise LicenceKeyError(f"environment variable {name} is not set")
            return cls.none()
        return cls.from_passphrase(value)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Key:
        """Read a key file written by :meth:`save` (versioned JSON); warns when others may read it."""
        path = Path(path)
        try:
            if path.stat().st_mode & 0o077:
                warnings.warn(
                    f"{path}: this licence key file can be read by other users of this machine; "
                    f"restrict it with: chmod 600 {path}",
                    InsecureKeyFileWarning,
                    stacklevel=2,
                )
        except OSError:
            pass  # a missing file is reported below
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LicenceKeyError(f"{path}: key file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            # `from None`: the decoder's message can quote the file, which holds the secret.
            raise LicenceKeyError(f"{path}: not a readable JSON key file") from None
        if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
            raise LicenceKeyError(f"{path}: not a {KEY_FILE_FORMAT} file")
        if doc.get("version") != KEY_FILE_VERSION:
            raise LicenceKeyError(f"{path}: unsupported key file version {doc.get('version')!r}")
        if doc.get("key") is None:
            return cls.none()
        try:
            secret = base64.b64decode(doc["key"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise LicenceKeyError(f"{path}: the key field is not base64") from None
        key = cls(secret) if len(secret) == KEY_BITS // 8 else None
        if key is None:
            raise LicenceKeyError(f"{path}: the key field does not hold {KEY_BITS} bits")
        if doc.get("fingerprint") not in (None, key.fingerprint()):
            raise LicenceKeyError(f"{path}: the fingerprint does not match the key (file damaged?)")
        return key

    # -- use ------------------------------------------------------------------------------------
    @property
    def is_none(self) -> bool:
        return self._secret is None

    def tensor(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The key as a ``[256]`` tensor of ±1 (bit 1 -> +1, bit 0 -> -1); zeros for :meth:`none`."""
        if self._secret is None:
            return torch.zeros(KEY_BITS, device=device, dtype=dtype)
        raw = torch.frombuffer(bytearray(self._secret), dtype=torch.uint8)
        bits = (raw.unsqueeze(1) >> torch.arange(7, -1, -1, dtype=torch.uint8)) & 1
        return (bits.reshape(-1).to(dtype) * 2 - 1).to(device)

    def fingerprint(self) -> str:
        """A short public id (``xxxx-xxxx-xxxx``), safe to print; ``"none"`` for the absent key."""
        if self._secret is None:
            return "none"
        h = _hkdf(self._secret, INFO_FINGERPRINT, 6).hex()
        return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"

    def distance(self, other: Key) -> int:
        """Hamming distance in bits between two real keys (for tests and attack reports)."""
        if self.is_none or other.is_none:
            raise LicenceKeyError("the absent key has no bits to compare")
        assert self._secret is not None and other._secret is not None
        a, b = int.from_bytes(self._secret, "big"), int.from_bytes(other._secret, "big")
        return bin(a ^ b).count("1")

    def encrypt(self, data: bytes, context: bytes = b"") -> bytes:
        """AES-256-GCM under a key derived from this one (HKDF-SHA256, fresh random salt and nonce per call).

        ``context`` is authenticated but not encrypted (a file header, say): decrypting with another context fails.
        Layout: ``SEAL_MAGIC | salt (16) | nonce (12) | ciphertext + tag``.
        """
        if self._secret is None:
            raise LicenceKeyError("the absent key cannot encrypt")
        salt, nonce = os.urandom(16), os.urandom(12)
        return SEAL_MAGIC + salt + nonce + AESGCM(self._aead_key(salt)).encrypt(nonce, data, context)

    def decrypt(self, blob: bytes, context: bytes = b"") -> bytes:
        """Undo :meth:`encrypt`.

        Raises:
            LicenceKeyError: the key is absent or not the one that encrypted ``blob``, or ``blob`` was altered.
        """
        if self._secret is None:
            raise LicenceKeyError("no licence key: sealed content stays sealed")
        if not blob.startswith(SEAL_MAGIC) or len(blob) < len(SEAL_MAGIC) + 28 + 16:
            raise LicenceKeyError("not sealed content (bad header)")
        head = len(SEAL_MAGIC)
        salt, nonce, body = blob[head : head + 16], blob[head + 16 : head + 28], blob[head + 28 :]
        try:
            return AESGCM(self._aead_key(salt)).decrypt(nonce, body, context)
        except InvalidTag:
            raise LicenceKeyError("this licence key does not open the sealed content (or it was altered)") from None

    def _aead_key(self, salt: bytes) -> bytes:
        if self._secret is None:
            raise LicenceKeyError("the absent key opens nothing")
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO_SEAL).derive(self._secret)

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the key file atomically with mode 0600; refuses to replace a file unless ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise LicenceKeyError(f"{path}: exists; refusing to overwrite a key file")
        doc = {
            "format": KEY_FILE_FORMAT,
            "version": KEY_FILE_VERSION,
            "fingerprint": self.fingerprint(),
            "key": None if self._secret is None else base64.b64encode(self._secret).decode("ascii"),
        }
        with atomic_output(path, mode=0o600) as tmp:
            tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        return path

    # -- protocol -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        if self._secret is None or other._secret is None:
            return self._secret is None and other._secret is None
        return hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"Key(fingerprint={self.fingerprint()!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


def random_keys(n: int, bits: int = KEY_BITS, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` uniformly random ±1 key tensors ``[n, bits]`` (for wrong-key trials and attacks; never a licence)."""
    return torch.randint(0, 2, (n, bits), generator=generator).float() * 2 - 1
