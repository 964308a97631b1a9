"""Encryption at rest for the few secrets the database must hold (API keys staff paste into the admin).

The encryption keys come from FIELD_ENCRYPTION_KEY (comma-separated Fernet keys, the first one encrypts) or, when
that is unset, from DATA_DIR/field_encryption_key (created once, mode 600). They are read on every use, so a
rotation (see `manage.py reencrypt_api_keys`) reaches running workers without a restart.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from .files import atomic_write


class SecretUnreadable(ValueError):
    """A stored secret cannot be decrypted with the configured keys."""


def _key_file():
    return settings.DATA_DIR / "field_encryption_key"


def _keys() -> list[bytes]:
    if settings.FIELD_ENCRYPTION_KEY:
        return [key.encode() for key in settings.FIELD_ENCRYPTION_KEY]
    path = _key_file()
    if not path.exists():
        atomic_write(path, lambda temp: temp.write_bytes(Fernet.generate_key() + b"\n"))  # mkstemp makes it 0600
    return [line.encode() for line in path.read_text().split() if line]


def _box() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt(secret: str) -> str:
    return _box().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _box().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEY; "
                               "enter it again in the admin") from None


def reencrypt(token: str) -> str:
    """The same secret encrypted with the current (first) key."""
    return _box().rotate(token.encode()).decode()


def add_key_file_key() -> None:
    """Put a new key first in DATA_DIR/field_encryption_key; the old ones still decrypt until re-encrypted."""
    if settings.FIELD_ENCRYPTION_KEY:
        raise ValueError("the keys come from FIELD_ENCRYPTION_KEY: put the new key first in that variable instead")
    old = _keys()
    atomic_write(_key_file(), lambda temp: temp.write_bytes(b"\n".join([Fernet.generate_key(), *old]) + b"\n"))


def drop_old_key_file_keys() -> None:
    if not settings.FIELD_ENCRYPTION_KEY:
        current = _keys()[0]
        atomic_write(_key_file(), lambda temp: temp.write_bytes(current + b"\n"))
