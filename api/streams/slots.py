"""At most N open streams per principal, across processes and hosts.

A Redis sorted set per principal: one member per open stream, scored by the
time of its last heartbeat. A stream whose process died stops refreshing its
member, which stops counting after `stale_seconds`; nothing has to clean up.
Taking a slot is one script, so two concurrent requests cannot both take the last.
"""

from __future__ import annotations

import secrets
import time

import redis

from api.auth.principal import Principal

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def principal_slot_key(principal: Principal) -> str:
    who = f"key:{principal.api_key_id}" if principal.api_key_id else f"user:{principal.user_id}"
    return f"iw:streams:{who}"


class StreamSlot:
    def __init__(self, client: redis.Redis, key: str, stale_seconds: float) -> None:
        self._client = client
        self._key = key
        self._stale = stale_seconds
        self.member = secrets.token_hex(8)

    def take(self, limit: int) -> bool:
        now = time.time()
        taken = self._client.eval(
            _TAKE,
            1,
            self._key,
            now - self._stale,
            limit,
            now,
            self.member,
            int(self._stale) + 1,
        )
        return bool(taken)

    def refresh(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(self._key, {self.member: time.time()}, xx=True)
        pipe.expire(self._key, int(self._stale) + 1)
        pipe.execute()

    def release(self) -> None:
        self._client.zrem(self._key, self.member)
