"""Grants (the seed's subscriptions): a consumer asks a producer for data, the producer
decides, either side may end it.

    requested -> accepted | refused
    accepted  -> revoked (by either side) | expired (when `expires` passes)

A grant covers a slice of the producer's data: some devices, some measurands, a
window of measurement time, or all of them. Expiry is judged at every use against the
clock, never only when the grant was made; a stored `accepted` past its expiry is
`expired`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class GrantStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    REVOKED = "revoked"
    EXPIRED = "expired"


class GrantError(ValueError):
    """A request or decision that is not valid as stated (e.g. an expiry in the past)."""


class GrantConflict(GrantError):
    """The grant is not in a state that allows this (e.g. accepting a refused grant)."""


class NotEntitled(GrantError):
    """This user may not make this decision (e.g. a consumer accepting)."""


@dataclass(frozen=True, slots=True)
class Slice:
    """Part of one producer's data; None means no limit on that dimension."""

    producer: str
    devices: frozenset[str] | None = None
    measurands: frozenset[str] | None = None
    since: datetime | None = None
    """Measurement time, inclusive."""
    until: datetime | None = None
    """Measurement time, exclusive."""

    def covers(self, producer: str, device: str, measurand: str, time: datetime) -> bool:
        return (
            producer == self.producer
            and (self.devices is None or device in self.devices)
            and (self.measurands is None or measurand in self.measurands)
            and (self.since is None or time >= self.since)
            and (self.until is None or time < self.until)
        )

    def narrowed(
        self,
        devices: frozenset[str] | None = None,
        measurands: frozenset[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Slice:
        """This slice with the given limits replacing its own; None keeps what it has
        (a producer accepting for less than was asked)."""
        return replace(
            self,
            devices=self.devices if devices is None else devices,
            measurands=self.measurands if measurands is None else measurands,
            since=self.since if since is None else since,
            until=self.until if until is None else until,
        )

    def within(self, wider: Slice) -> bool:
        """True when this slice asks for nothing `wider` does not cover."""
        return (
            self.producer == wider.producer
            and _subset(self.devices, wider.devices)
            and _subset(self.measurands, wider.measurands)
            and (wider.since is None or (self.since is not None and self.since >= wider.since))
            and (wider.until is None or (self.until is not None and self.until <= wider.until))
        )


def _subset(narrow: frozenset[str] | None, wide: frozenset[str] | None) -> bool:
    return wide is None or (narrow is not None and narrow <= wide)


@dataclass(frozen=True, slots=True)
class Grant:
    id: int
    consumer: str
    scope: Slice
    status: GrantStatus
    created: datetime
    modified: datetime
    expires: datetime | None = None
    reason: str | None = None
    """Why it was requested, refused or revoked, in the words of whoever did it."""
    decided_by: str | None = None

    @property
    def producer(self) -> str:
        return self.scope.producer

    def status_at(self, now: datetime) -> GrantStatus:
        if self.status is GrantStatus.ACCEPTED and self.expires is not None and now >= self.expires:
            return GrantStatus.EXPIRED
        return self.status

    def active(self, now: datetime) -> bool:
        return self.status_at(now) is GrantStatus.ACCEPTED

    def accept(
        self,
        by: str,
        now: datetime,
        narrowed: Slice | None = None,
        expires: datetime | None = None,
    ) -> Grant:
        """The producer accepts, possibly for less data or a shorter time than asked."""
        self._decided_by_producer(by, "accept")
        self._from(GrantStatus.REQUESTED, now, "accepted")
        scope = narrowed or self.scope
        if not scope.within(self.scope):
            raise GrantError("an accepted grant may only narrow what was requested")
        if expires is None:
            expires = self.expires
        elif self.expires is not None and expires > self.expires:
            raise GrantError("an accepted grant may not outlast the requested expiry")
        if expires is not None and expires <= now:
            raise GrantError("the expiry must be in the future")
        return replace(
            self,
            scope=scope,
            expires=expires,
            status=GrantStatus.ACCEPTED,
            modified=now,
            decided_by=by,
        )

    def refuse(self, by: str, now: datetime, reason: str | None = None) -> Grant:
        self._decided_by_producer(by, "refuse")
        self._from(GrantStatus.REQUESTED, now, "refused")
        return replace(self, status=GrantStatus.REFUSED, modified=now, reason=reason, decided_by=by)

    def revoke(self, by: str, now: datetime, reason: str | None = None) -> Grant:
        """Either side ends an accepted grant."""
        if by not in (self.producer, self.consumer):
            raise NotEntitled(f"{by!r} is not a party to grant {self.id}")
        self._from(GrantStatus.ACCEPTED, now, "revoked")
        return replace(self, status=GrantStatus.REVOKED, modified=now, reason=reason, decided_by=by)

    def _decided_by_producer(self, by: str, what: str) -> None:
        if by != self.producer:
            raise NotEntitled(f"only the producer {self.producer!r} may {what} grant {self.id}")

    def _from(self, expected: GrantStatus, now: datetime, target: str) -> None:
        current = self.status_at(now)
        if current is not expected:
            raise GrantConflict(f"grant {self.id} is {current.value}; it cannot be {target}")


@dataclass(frozen=True, slots=True)
class Access:
    """What one caller may read now: everything (`slices` None, admins) or the union of
    `slices` (a producer's own data; a consumer's active grants; nothing is empty)."""

    slices: tuple[Slice, ...] | None

    def can_read(self, producer: str, device: str, measurand: str, time: datetime) -> bool:
        if self.slices is None:
            return True
        return any(s.covers(producer, device, measurand, time) for s in self.slices)

    def of_producer(self, producer: str | None) -> tuple[Slice, ...] | None:
        """The slices a query restricted to `producer` (None: any) may return."""
        if self.slices is None:
            return None if producer is None else (Slice(producer),)
        if producer is None:
            return self.slices
        return tuple(s for s in self.slices if s.producer == producer)
