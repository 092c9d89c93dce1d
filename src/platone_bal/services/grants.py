"""Grant requests and decisions, and what each user may read because of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from platone_bal.domain.decisions import Decision, grant_topic
from platone_bal.domain.grants import (
    Access,
    Grant,
    GrantConflict,
    GrantError,
    GrantStatus,
    NotEntitled,
    Slice,
)
from platone_bal.domain.users import Role, User
from platone_bal.ports import Store


class GrantNotFound(LookupError):
    """No such grant, or the caller is not a party to it (the same answer for both)."""


class GrantService:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.version = 0
        """Bumped by every change, so caches of `access` know when to look again."""
        self.on_change: Callable[[], object] = lambda: None
        """Told after every stored change (e.g. to update an external broker at once)."""

    def request(
        self,
        consumer: User,
        scope: Slice,
        expires: datetime | None = None,
        reason: str | None = None,
    ) -> Grant:
        now = self.clock()
        if consumer.role is not Role.CONSUMER:
            raise NotEntitled("only consumers request grants")
        producer = self.store.get_user(scope.producer)
        if producer is None or producer.role is not Role.PRODUCER or producer.disabled:
            raise GrantNotFound(f"no producer {scope.producer!r}")
        if expires is not None and expires <= now:
            raise GrantError("the expiry must be in the future")
        if scope.since and scope.until and scope.since >= scope.until:
            raise GrantError("the data window must end after it starts")
        for existing in self.store.grants_of(consumer.username):
            open_states = (GrantStatus.REQUESTED, GrantStatus.ACCEPTED)
            if existing.producer == scope.producer and existing.status_at(now) in open_states:
                raise GrantConflict(
                    f"grant {existing.id} with {scope.producer!r} is already "
                    f"{existing.status_at(now).value}"
                )
        grant = Grant(
            id=0,
            consumer=consumer.username,
            scope=scope,
            status=GrantStatus.REQUESTED,
            created=now,
            modified=now,
            expires=expires,
            reason=reason,
            decided_by=consumer.username,
        )
        self.version += 1
        stored = self.store.add_grant(grant, self._decision(grant, consumer.username))
        self.on_change()
        return stored

    def get(self, grant_id: int, user: User) -> Grant:
        grant = self.store.grant(grant_id)
        if grant is None or not (
            user.role is Role.ADMIN or user.username in (grant.consumer, grant.producer)
        ):
            raise GrantNotFound(f"no grant {grant_id} of yours")
        return grant

    def accept(
        self,
        grant_id: int,
        producer: User,
        narrowed: Slice | None = None,
        expires: datetime | None = None,
    ) -> Grant:
        grant = self.get(grant_id, producer)
        return self._save(
            grant.accept(producer.username, self.clock(), narrowed, expires), producer
        )

    def refuse(self, grant_id: int, producer: User, reason: str | None = None) -> Grant:
        grant = self.get(grant_id, producer)
        return self._save(grant.refuse(producer.username, self.clock(), reason), producer)

    def revoke(self, grant_id: int, party: User, reason: str | None = None) -> Grant:
        grant = self.get(grant_id, party)
        return self._save(grant.revoke(party.username, self.clock(), reason), party)

    def _save(self, grant: Grant, decided_by: User) -> Grant:
        self.store.save_grant(grant, self._decision(grant, decided_by.username))
        self.version += 1
        self.on_change()
        return grant

    def _decision(self, grant: Grant, decided_by: str) -> Decision:
        """The decision that put `grant` in its status, for the on-chain record."""
        provider = self.store.get_user(grant.producer)
        consumer = self.store.get_user(grant.consumer)
        assert provider is not None and consumer is not None
        return Decision(
            grant_id=grant.id,
            status=grant.status,
            decided_by=decided_by,
            provider=provider.wallet,
            consumer=consumer.wallet,
            topic=grant_topic(grant),
            timestamp=int(grant.modified.timestamp()),
        )

    def grants_of(self, user: User) -> list[Grant]:
        """The grants `user` is a party to; an admin's: all of them."""
        return self.store.grants_of(None if user.role is Role.ADMIN else user.username)

    def producers_for(self, user: User) -> list[tuple[User, Grant | None]]:
        """The enabled producers one may ask, each with `user`'s newest grant with them
        (the seed's consumer dashboard list)."""
        newest: dict[str, Grant] = {}
        for grant in self.store.grants_of(user.username):  # newest first
            newest.setdefault(grant.producer, grant)
        return [
            (producer, newest.get(producer.username))
            for producer in self.store.list_users()
            if producer.role is Role.PRODUCER and not producer.disabled
        ]

    def access(self, user: User) -> Access:
        """What `user` may read at this moment (expiry judged now)."""
        if user.disabled:
            return Access(())
        if user.role is Role.ADMIN:
            return Access(None)
        if user.role is Role.PRODUCER:
            return Access((Slice(user.username),))
        now = self.clock()
        active = [g.scope for g in self.store.accepted_grants(user.username) if g.active(now)]
        return Access(tuple(active))
