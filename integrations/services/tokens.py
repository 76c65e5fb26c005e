"""API tokens: create (the secret is returned once), authenticate, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from integrations.models import ApiToken

TOKEN_PREFIX = "cdk"  # noqa: S105 - the visible start of every token, not a secret
# last_used_at is written at most this often per token, not on every request.
_TOUCH_EVERY = timedelta(minutes=1)


class TokenError(Exception):
    """The token cannot be created or changed as asked; the message is for the user."""


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # the whole token as the client sends it; never stored


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, user, name: str, created_by=None) -> CreatedToken:
    name = name.strip()[:100]
    if not name:
        raise TokenError("Give the token a name that says what it is for.")
    if not user.is_active:
        raise TokenError(f"{user} is not an active user.")
    prefix = secrets.token_hex(6)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, key_hash=_hash(raw), created_by=created_by or user
    )
    return CreatedToken(token=token, secret=raw)


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token this string is, or None (unknown, malformed, revoked, inactive user)."""
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1]:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.key_hash, _hash(raw.strip())):
        return None
    if not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_token_revoke(*, token: ApiToken, by) -> bool:
    """Revoke at once; False if it already was. Revoked tokens stay listed for the record."""
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=by
    )
    return updated == 1
