"""Access tokens revoked before they expire (logout), remembered in Redis until they would.

Access tokens are stateless JWTs; a logout must still end the session at once, so
its `jti` is kept in a deny list that expires with the token itself.
"""

from __future__ import annotations

import math
from datetime import datetime

from api.services import services

_PREFIX = "iw:revoked-access:"


def revoke_access_token(token_id: str, expires_at: datetime, now: datetime) -> None:
    remaining = math.ceil((expires_at - now).total_seconds())
    if token_id and remaining > 0:
        services().redis.set(_PREFIX + token_id, b"1", ex=remaining)


def is_access_token_revoked(token_id: str) -> bool:
    return bool(token_id) and bool(services().redis.exists(_PREFIX + token_id))
