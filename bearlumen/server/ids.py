"""Public ids and idempotency-key digests."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["key_digest", "new_id", "new_ids"]


def new_id(prefix: str) -> str:
    """``<prefix>_<24 hex chars>``: 96 random bits, for rows that also have a unique index on the id."""
    return f"{prefix}_{secrets.token_hex(12)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids of 128 random bits each (event ids carry no index, so collisions must be negligible)."""
    raw = secrets.token_bytes(16 * count).hex()
    return [f"{prefix}_{raw[i : i + 32]}" for i in range(0, 32 * count, 32)]


def key_digest(idempotency_key: str) -> bytes:
    """The 128-bit BLAKE2b digest the dedup index is built on.

    Indexing a fixed 16-byte digest instead of the key (up to 255 chars) keeps the unique index small: with
    random keys every insert lands on a random index page, so index size drives ingest speed. The chance of
    two distinct keys colliding is about n^2 / 2^129 (1e-15 at a trillion keys per tenant).
    """
    return hashlib.blake2b(idempotency_key.encode("utf-8"), digest_size=16).digest()
