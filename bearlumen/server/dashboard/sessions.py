"""Dashboard sessions, kept server-side.

Signing in with an API key creates a row in ``dashboard_sessions`` and hands the browser a random 256-bit
token in an HttpOnly cookie; the table keeps only the token's SHA-256, so neither the cookie nor the
database ever holds the API key. Every request looks the session up (one indexed read) and checks that it
has not expired and that the key it signed in with is still active: revoking a key or signing out ends the
session at once, which a signed cookie alone could not do. Each session carries its own CSRF token, which
every POST form repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database
from bearlumen.server.keys import authenticate
from bearlumen.server.schema import api_keys, dashboard_sessions, tenants
from bearlumen.server.timefmt import HOUR_US, now_us

__all__ = [
    "SESSION_LIFETIME_US",
    "Session",
    "end_session",
    "find_session",
    "new_token",
    "sign_in",
    "tokens_match",
]

SESSION_LIFETIME_US = 12 * HOUR_US
_s = dashboard_sessions.c


@dataclass(frozen=True)
class Session:
    tenant_id: int
    tenant_name: str
    csrf_token: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(expected: Optional[str], given: Optional[str]) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def sign_in(db: Database, api_key: str) -> Optional[str]:
    """A new session's cookie token for an active ``api_key``; None for a wrong, malformed or revoked key."""
    principal = db.read(lambda conn: authenticate(conn, api_key.strip()))
    if principal is None:
        return None
    token, now = new_token(), now_us()

    def write(conn: Connection) -> None:
        conn.execute(delete(dashboard_sessions).where(_s.expires_us < now))  # housekeeping, indexed
        conn.execute(
            insert(dashboard_sessions).values(
                token_hash=_digest(token),
                tenant_id=principal.tenant_id,
                key_id=principal.key_id,
                csrf_token=new_token(),
                created_us=now,
                expires_us=now + SESSION_LIFETIME_US,
            )
        )

    db.write(write)
    return token


def find_session(db: Database, token: Optional[str]) -> Optional[Session]:
    """The live session of a cookie token: not expired, and its API key not revoked."""
    if not token or len(token) > 100:
        return None
    query = (
        select(_s.tenant_id, tenants.c.name, _s.csrf_token)
        .join(api_keys, api_keys.c.id == _s.key_id)
        .join(tenants, tenants.c.id == _s.tenant_id)
        .where(_s.token_hash == _digest(token), _s.expires_us > now_us(), api_keys.c.revoked_us.is_(None))
    )
    row = db.read(lambda conn: conn.execute(query).first())
    return None if row is None else Session(tenant_id=row[0], tenant_name=row[1], csrf_token=row[2])


def end_session(db: Database, token: str) -> None:
    db.write(lambda conn: conn.execute(delete(dashboard_sessions).where(_s.token_hash == _digest(token))))
