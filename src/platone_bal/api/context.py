"""What the routers need, built once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from platone_bal.api.tokens import TokenSigner
from platone_bal.domain.proof import AnchorLookup
from platone_bal.ports import Store
from platone_bal.services.audit_trail import AuditTrail
from platone_bal.services.clients import ClientService
from platone_bal.services.devices import DeviceService
from platone_bal.services.grants import GrantService
from platone_bal.services.ingest import IngestService
from platone_bal.services.key_admin import KeyAdmin
from platone_bal.services.restore_jobs import Lifecycle
from platone_bal.services.setpoints import SetPointService
from platone_bal.services.users import UserService


@dataclass(frozen=True)
class ApiContext:
    store: Store
    users: UserService
    tokens: TokenSigner
    clients: ClientService
    ingest: IngestService
    grants: GrantService
    devices: DeviceService
    audit: AuditTrail
    anchor_lookup: Callable[[], AnchorLookup | None] = lambda: None
    """Checks anchors on the node's own chain and registry; None until the chain is open."""
    key_admin: Callable[[], KeyAdmin | None] = lambda: None
    """DeviceRegistry through the node's chain-admin account, and its entries as read;
    None until the chain is open."""
    node_status: Callable[[], dict[str, str]] = lambda: {}
    """Broker and chain state in words, for the operators' dashboard."""
    setpoints: SetPointService | None = None
    """Set points (bal-setpoints); None where a composition has none (some unit tests)."""
    lifecycle: Lifecycle | None = None
    """The hot window: archives and restores (None where a composition has none)."""
    chain_rpc_port: int | None = None
    """Port of the embedded chain's read-only JSON-RPC (the verifier page proposes it for
    the anchor check); None when the node serves none (BAL_CHAIN=rpc, or port 0)."""
