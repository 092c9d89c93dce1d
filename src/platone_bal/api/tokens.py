"""Bearer tokens: HS256 JWTs with expiry, signed with the node's secret.

A token only names the user; role and status are read from the store at every request,
so disabling a user takes effect at once (fail closed).
"""

from __future__ import annotations

import secrets
import time

import jwt

ISSUER = "platone-bal"


class TokenSigner:
    def __init__(self, key: str, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

    def issue(self, username: str) -> str:
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": username,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def subject(self, token: str) -> str | None:
        """The username of a valid, unexpired token, or None."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) else None
