"""Keeps an external broker's accounts and rules equal to the BAL's users, devices and
grants.

The policy depends on the clock (grants expire, data windows close), so it is computed
again every `interval` (1 s); when it differs from what was last applied, or a change
woke the worker (a grant decided, a user disabled, a password set), it is applied at
once. Every `resync` seconds it is applied even when unchanged, which reads the
broker's state again and repairs drift made behind the BAL's back. The first
application at start-up does the same.

Passwords wait here, in memory only, until the broker has taken them: the broker
needs them in clear and the store keeps only argon2 hashes.

Such a broker does not tell the BAL who received what, so the audit log records what
the BAL decides: when a consumer's MQTT access to a producer's data opened and closed
(a grant's role given or taken), with the topics it covered.

Every node of a BAL runs this worker (a password reaches the broker only through the
node that received it), but only the leader records those changes (`audits`), once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from platone_bal.domain.broker_policy import Action, BrokerPolicy, broker_policy
from platone_bal.ports import Store
from platone_bal.services.audit_trail import AuditTrail
from platone_bal.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)


class AppliedReport(Protocol):
    @property
    def passwords_set(self) -> list[str]: ...

    @property
    def errors(self) -> list[str]: ...


class PolicyBroker(Protocol):
    """A broker that holds its own copy of the policy (e.g. Mosquitto's dynsec)."""

    def apply(self, policy: BrokerPolicy, passwords: Mapping[str, str]) -> AppliedReport:
        """Make the broker hold `policy` and set `passwords`; raises when unreachable."""
        ...


class BrokerSync(PeriodicWorker):
    name = "bal-broker-sync"

    def __init__(
        self,
        store: Store,
        broker: PolicyBroker,
        clock: Callable[[], datetime],
        interval: float = 1.0,
        resync: float = 60.0,
        audit: AuditTrail | None = None,
    ) -> None:
        super().__init__(interval, max_backoff=30.0)
        self.store = store
        self.audit = audit
        self.broker = broker
        self.clock = clock
        self.resync = resync
        self.audits: Callable[[], bool] = lambda: True
        """Whether this node records access changes in bal-audit (the leader does)."""
        self.applied: BrokerPolicy | None = None
        self.last_errors: list[str] = []
        self._applied_at = -float("inf")
        self._passwords: dict[str, str] = {}
        self._passwords_lock = threading.Lock()
        self._steps = threading.Condition()
        self._started = self._succeeded = 0
        """Steps begun, and the number of the latest that succeeded."""

    def password_set(self, username: str, password: str, wait: float = 5.0) -> bool:
        """Hand a new password of `username` (a user or a device login) to the broker
        and wait until it has it (see `settle`); if the broker is down it stays
        pending, in memory only, and goes with the next step that succeeds."""
        with self._passwords_lock:
            self._passwords[username] = password
        return self.settle(wait)

    def settle(self, wait: float = 5.0) -> bool:
        """Apply now and wait up to `wait` seconds for a step that began after this
        call to succeed: an API call that created an account or decided a grant
        answers only once the broker holds the result. False if the broker did not
        take it in time (it is retried every interval). Before the worker runs there
        is nothing to wait for: the first step takes everything."""
        if not self.running:
            return False
        with self._steps:
            target = self._started + 1
            self.wake()
            return self._steps.wait_for(lambda: self._succeeded >= target, wait)

    def policy(self) -> BrokerPolicy:
        return broker_policy(
            self.store.list_users(),
            self.store.list_devices(),
            self.store.accepted_grants(),
            self.clock(),
        )

    def step(self) -> bool:
        """Apply the policy if it changed, passwords wait or a resync is due."""
        with self._steps:
            self._started += 1
            number = self._started
        applied = self._step()
        with self._steps:
            self._succeeded = number
            self._steps.notify_all()
        return applied

    def _step(self) -> bool:
        policy = self.policy()
        with self._passwords_lock:
            passwords = dict(self._passwords)
        due = time.monotonic() - self._applied_at >= self.resync
        if policy == self.applied and not passwords and not due:
            return False
        report = self.broker.apply(policy, passwords)
        with self._passwords_lock:
            for username in passwords:
                # Taken, or refused for good (e.g. the user was removed meanwhile).
                if self._passwords.get(username) == passwords[username]:
                    del self._passwords[username]
        self._audit_changes(self.applied, policy)
        self.applied = policy
        self.last_errors = report.errors
        self._applied_at = time.monotonic()
        return True

    def first_sync(self, timeout: float) -> None:
        """Apply once before the node's MQTT clients start, so the service account may
        publish certified readings before egress begins; raises after `timeout`, or at
        once when the broker refuses the service account (PermissionError)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.step()
                return
            except Exception as error:
                if isinstance(error, PermissionError) or time.monotonic() >= deadline:
                    raise RuntimeError(f"the broker's dynamic security: {error}") from error
                log.warning("broker sync failed (%s); retrying", error)
                time.sleep(1.0)

    def _audit_changes(self, before: BrokerPolicy | None, after: BrokerPolicy) -> None:
        """Record grant roles given and taken since the last application (none at the
        first: what held before a restart is not known here)."""
        if self.audit is None or before is None or not self.audits():
            return
        for name in sorted(set(before.accounts) | set(after.accounts)):
            old = before.accounts[name].roles if name in before.accounts else frozenset()
            new = after.accounts[name].roles if name in after.accounts else frozenset()
            for role, policy, action in [
                *((r, after, "mqtt.access.opened") for r in sorted(new - old)),
                *((r, before, "mqtt.access.closed") for r in sorted(old - new)),
            ]:
                if not role.startswith("bal:grant:"):
                    continue
                rules = policy.roles[role]
                topics = sorted(r.topic_filter for r in rules if r.action is Action.RECEIVE)
                producers = {policy.grant_producers[role]}
                self.audit.record(name, "mqtt", action, producers, " ".join(topics), 0)
