"""Password hashing (argon2id via argon2-cffi) and the rules a new password must pass."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import WeakPassword

COMMON_FILE = Path(__file__).with_name("common-passwords.txt")
_HASHER = PasswordHasher()  # argon2id, the library's current RFC 9106 low-memory profile
# Hashing a throwaway once gives unknown emails the same cost as wrong passwords (no timing tell).
_DUMMY_HASH = _HASHER.hash("modelyard-dummy-password")


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list; its header lines start with "# " (no listed password does)."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("# "))


def check_strength(password: str, *, email: str, min_length: int) -> None:
    """Raise ``WeakPassword`` naming the rule a password breaks."""
    if len(password) < min_length:
        raise WeakPassword(f"Use at least {min_length} characters.")
    lowered = password.strip().lower()
    if lowered in common_passwords():
        raise WeakPassword("This password is one of the most common ones; choose another.")
    if lowered in {email.lower(), email.split("@")[0].lower()}:
        raise WeakPassword("The password must not be your email address.")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash still costs one verification."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
