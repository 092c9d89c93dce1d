"""Puts every grant decision on chain, signed by the user who made it.

Decisions are written with their grant in one transaction; this worker signs each with
the decider's custodial key (EIP-712, the registry's domain) and has the node's
recorder account send it, oldest first. A decision the registry refuses (it checks the
signer and the transition) is kept with the reason and not retried; when the chain is
unreachable the worker backs off and tries again, so nothing is lost.
"""

from __future__ import annotations

import logging

from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.decisions import typed_data
from platone_bal.ports import ChainError, GrantLedger, Store
from platone_bal.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)

BATCH = 100


class DecisionRecorder(PeriodicWorker):
    name = "bal-decisions"

    def __init__(
        self, store: Store, ledger: GrantLedger, wallets: Wallets, interval: float = 1.0
    ) -> None:
        super().__init__(interval, 60.0)
        self.store = store
        self.ledger = ledger
        self.wallets = wallets

    def step(self) -> int:
        return self.record_pending()

    def record_pending(self) -> int:
        recorded = 0
        for pending in self.store.pending_decisions(BATCH):
            if self.stopping:
                break
            decision = pending.decision
            keystore = self.store.user_keystore(decision.decided_by)
            if keystore is None:
                self.store.decision_failed(pending.id, f"no account for {decision.decided_by!r}")
                continue
            typed = typed_data(decision, self.ledger.chain_id, self.ledger.address)
            signature, signer = self.wallets.sign_typed_data(keystore, typed)
            try:
                tx, block = self.ledger.record(decision, bytes.fromhex(signature[2:]))
            except ChainError as error:
                if not self.ledger.reachable():
                    raise
                log.error("registry refused decision %d: %s", pending.id, error)
                self.store.decision_failed(pending.id, str(error))
                continue
            self.store.decision_recorded(
                pending.id, signature, signer, tx, block, self.ledger.chain_id, self.ledger.address
            )
            recorded += 1
        return recorded
