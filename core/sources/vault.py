"""A source's secrets, encrypted at rest with ``cryptography``'s Fernet.

The key comes from the ``SOURCE_SECRET_KEY`` setting: one or more Fernet keys,
comma-separated (``MultiFernet``: the first encrypts, every one decrypts, so a
key is rotated by putting the new one first and re-saving, or simply keeping
the old one listed). Fernet is authenticated encryption (AES-128-CBC with
HMAC-SHA256) from a library the Python world keeps well; a secret tampered
with in the database fails to decrypt rather than decrypting to garbage.
Without a key no secret can be saved, and the message says how to make one.
The secrets are never logged nor shown once saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.errors import ConfigurationError

_HOW = "make one with `bulk-import source new-key` and set it in SOURCE_SECRET_KEY on every process"


@dataclass(frozen=True)
class Secrets:
    """What a source keeps secret: an SFTP password or private key, an HTTPS header's value."""

    password: str | None = None
    private_key: str | None = None
    header_value: str | None = None

    def __repr__(self) -> str:  # never in a log line or a traceback's locals
        return "Secrets(***)"

    @property
    def empty(self) -> bool:
        """Nothing secret to store."""
        return not (self.password or self.private_key or self.header_value)


def new_key() -> str:
    """A fresh key for ``SOURCE_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


def _fernet(key_setting: str) -> MultiFernet:
    keys = [k.strip() for k in key_setting.split(",") if k.strip()]
    if not keys:
        raise ConfigurationError(
            f"SOURCE_SECRET_KEY is not set, so a source's secret cannot be stored: {_HOW}"
        )
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in keys])
    except ValueError:
        raise ConfigurationError(f"SOURCE_SECRET_KEY is not a list of Fernet keys: {_HOW}") from None


def seal(secrets: Secrets, key_setting: str) -> str | None:
    """The secrets encrypted for the database (None when there are none)."""
    if secrets.empty:
        return None
    data = {k: v for k, v in vars(secrets).items() if v}
    return _fernet(key_setting).encrypt(orjson.dumps(data)).decode("ascii")


def unseal(token: str | None, key_setting: str) -> Secrets:
    """The secrets of a source, decrypted (empty when none were stored)."""
    if token is None:
        return Secrets()
    try:
        data = orjson.loads(_fernet(key_setting).decrypt(token.encode("ascii")))
    except InvalidToken:
        raise ConfigurationError(
            "the source's secret does not decrypt with SOURCE_SECRET_KEY: was the key changed? Keep the old"
            " key listed after the new one (comma-separated), or save the source's secret again"
        ) from None
    return Secrets(**data)
