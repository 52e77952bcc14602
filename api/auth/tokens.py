"""JWT access tokens (HS256, PyJWT) and opaque refresh tokens / API keys."""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"
ISSUER = "intelligent-workflows"
API_KEY_PREFIX = "iwk_"


class TokenError(Exception):
    """The presented credential is not valid; `reason` is a bounded label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    token_id: str
    issued_at: datetime
    expires_at: datetime


def issue_access_token(
    *,
    secret: str,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    role: str,
    permissions: frozenset[str],
    now: datetime,
    ttl: timedelta,
) -> str:
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "org": str(organization_id),
        "role": role,
        "perms": sorted(permissions),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # pinned: "none" and RS/HS confusion are refused
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "org", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("expired", "The access token has expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad_signature", "The access token signature is invalid") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", "The access token is invalid") from exc
    if claims.get("typ") != "access":
        raise TokenError("malformed", "Not an access token")
    try:
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            organization_id=uuid.UUID(claims["org"]),
            role=str(claims.get("role", "")),
            token_id=str(claims.get("jti", "")),
            issued_at=datetime.fromtimestamp(int(claims["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        # OverflowError/OSError: a time claim outside what a datetime holds (exp=1e30).
        raise TokenError("malformed", "The access token is invalid") from exc


class VerifiedTokens:
    """Access tokens this process has already verified, with their claims.

    Signed claims cannot change, so verifying a token again repeats only the
    HMAC and PyJWT's parsing (PyJWT 2.15 checks every character of each
    segment in Python): ~250 µs per request, and a client sends the same token
    for its whole lifetime. Expiry is checked again on every use; revocation,
    membership and the user's standing are the caller's checks, made on every
    request as before. Bounded: the oldest entries are dropped first.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._claims: OrderedDict[tuple[str, str], AccessClaims] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._claims)

    def decode(self, token: str, *, secret: str) -> AccessClaims:
        key = (secret, token)
        claims = self._claims.get(key)
        if claims is None:
            claims = decode_access_token(token, secret=secret)
            with self._lock:
                self._claims[key] = claims
                while len(self._claims) > self._size:
                    self._claims.popitem(last=False)
        elif claims.expires_at.timestamp() <= datetime.now(UTC).timestamp():
            # What PyJWT would answer (it compares exp <= now, with no leeway).
            raise TokenError("expired", "The access token has expired")
        return claims


def new_opaque_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """High-entropy secrets need a fast hash, not a password hash."""
    return hashlib.sha256(token.encode()).hexdigest()
