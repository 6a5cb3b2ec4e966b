"""Password hashing (argon2id) and the decision chain's entry hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

GENESIS_HASH = "0" * 64


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Hash of one record of an append-only chain: the previous entry's hash plus this entry's
    fields in a canonical form. Changing, deleting or reordering any entry breaks every later
    hash."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()
