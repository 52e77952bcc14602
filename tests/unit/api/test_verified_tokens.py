"""The per-process cache of verified access tokens (api.auth.tokens.VerifiedTokens)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.auth.tokens import TokenError, VerifiedTokens, issue_access_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def _token(*, secret: str = SECRET, ttl: timedelta = timedelta(minutes=5), age: float = 0) -> str:
    return issue_access_token(
        secret=secret,
        user_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role="admin",
        permissions=frozenset({"event:create"}),
        now=datetime.now(UTC) - timedelta(seconds=age),
        ttl=ttl,
    )


def test_a_token_is_verified_once_and_its_claims_reused() -> None:
    tokens = VerifiedTokens()
    token = _token()

    first = tokens.decode(token, secret=SECRET)

    assert tokens.decode(token, secret=SECRET) is first
    assert first.role == "admin"


def test_a_cached_token_that_expires_is_refused() -> None:
    tokens = VerifiedTokens()
    # Issued 299 s ago with a 300 s lifetime: valid for one more second.
    token = _token(age=299)
    tokens.decode(token, secret=SECRET)

    time.sleep(1.1)

    with pytest.raises(TokenError) as refused:
        tokens.decode(token, secret=SECRET)
    assert refused.value.reason == "expired"


def test_a_token_verified_under_one_secret_is_checked_again_under_another() -> None:
    tokens = VerifiedTokens()
    token = _token()
    tokens.decode(token, secret=SECRET)

    with pytest.raises(TokenError) as refused:
        tokens.decode(token, secret="another-secret-that-is-long-enough-for-hs256")
    assert refused.value.reason == "bad_signature"


def test_a_bad_token_is_not_remembered() -> None:
    tokens = VerifiedTokens()
    forged = _token(secret="someone-else-s-secret-that-is-long-enough")

    for _ in range(2):
        with pytest.raises(TokenError):
            tokens.decode(forged, secret=SECRET)
    assert len(tokens) == 0


def test_the_oldest_tokens_are_dropped_beyond_the_bound() -> None:
    tokens = VerifiedTokens(size=2)
    oldest, middle, newest = _token(), _token(), _token()
    kept = tokens.decode(middle, secret=SECRET)
    tokens.decode(oldest, secret=SECRET)
    tokens.decode(middle, secret=SECRET)
    tokens.decode(newest, secret=SECRET)

    assert len(tokens) == 2
    # middle was inserted first, so it went first: decoding it again verifies afresh.
    assert tokens.decode(middle, secret=SECRET) is not kept
