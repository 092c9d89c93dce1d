"""Bearer tokens: HS256 JWTs with expiry and scopes, signed with the node's secret.

A token names the user, its scopes, its token version and, for client-credential
tokens, the client. Role, status, the client's state and the current token version are
read from the store at every request, so disabling a user or a client takes effect at
once, and raising the version (sign-out, password change or reset, disabling) revokes
every token issued before (fail closed). A token without a version is refused.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from platone_bal.domain.users import Scope

ISSUER = "platone-bal"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    scopes: frozenset[Scope]
    client_id: str | None
    version: int
    """The user's token version at issue (the client's, for a client's token)."""


class TokenSigner:
    def __init__(self, key: str, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

    def issue(
        self,
        username: str,
        scopes: frozenset[Scope],
        client_id: str | None = None,
        version: int = 0,
    ) -> str:
        """A signed token; `version` is the token version of its user (of its client for
        a client's token) now, so raising that version later revokes it."""
        issued = int(time.time())
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": username,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": secrets.token_hex(8),
            "scope": " ".join(sorted(scopes)),
            "ver": version,
        }
        if client_id is not None:
            claims["client_id"] = client_id
        return jwt.encode(claims, self._key, algorithm="HS256")

    def claims(self, token: str) -> TokenClaims | None:
        """What a valid, unexpired token says, or None."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "scope", "ver"]},
            )
        except jwt.PyJWTError:
            return None
        subject, scope, client_id = claims.get("sub"), claims.get("scope"), claims.get("client_id")
        version = claims.get("ver")
        if not isinstance(subject, str) or not isinstance(scope, str):
            return None
        if not isinstance(version, int) or isinstance(version, bool):
            return None
        if client_id is not None and not isinstance(client_id, str):
            return None
        try:
            scopes = frozenset(Scope(name) for name in scope.split())
        except ValueError:
            return None
        return TokenClaims(subject, scopes, client_id, version)
