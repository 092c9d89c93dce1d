"""One audit of one log: the checks of the package's docstring in its order, each
stopping the audit at the first problem it finds."""

from __future__ import annotations

from collections.abc import Callable

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import AnchorChain, ChainError, Store
from platone_bal.services.audit.chain import (
    ChainView,
    check_anchor_roots,
    check_on_chain,
    compare_with_chain,
    none_missing,
    read_chain,
)
from platone_bal.services.audit.messages import check_messages
from platone_bal.services.audit.report import AuditReport, Finding
from platone_bal.services.audit.rows import stored_anchors
from platone_bal.services.audit.schedule import checked_apart
from platone_bal.services.audit.tree import LogPass, nothing_beyond
from platone_bal.services.audit.workers import Pages


def audit_log(
    store: Store,
    log: str,
    chain: AnchorChain | None,
    progress: Callable[[int], None] = lambda _: None,
    pages: Pages | None = None,
) -> AuditReport:
    """Audit `log` (see the package's docstring); without a chain, only the store.

    The chain is read before the store: every anchor on chain is then of leaves already
    stored, so even on a running node only a store behind the chain fails that check.
    `pages` says how the records are read (by default in pages of PAGE, all checked
    in this process); the report is the same however they are.
    """
    report = AuditReport(log, 0)
    try:
        _audit(store, log, chain, progress, pages or Pages(), report)
    except Finding as finding:
        report.problem, report.bad_index = finding.problem, finding.index
    return report


def _audit(
    store: Store,
    log: str,
    chain: AnchorChain | None,
    progress: Callable[[int], None],
    pages: Pages,
    report: AuditReport,
) -> None:
    """The checks in the package docstring's order; the first problem raises `Finding`.
    A chain that cannot be read fails the audit only after the store's own checks."""
    view: ChainView | None = None
    chain_error: ChainError | None = None
    if chain is not None:
        try:
            view = read_chain(chain, log)
        except ChainError as error:
            chain_error = error
    stored = stored_anchors(store, log)
    report.size = store.log_size(log)
    wanted = {anchor.size for anchor in stored} | (set(view.roots) if view else set())
    with checked_apart(store, log, report.size, pages) as apart:
        roots = LogPass(store, log, report, wanted, pages.size).run(apart.log_pages, progress)
        nothing_beyond(store, log, report.size)
        check_anchor_roots(stored, roots, report.size)
        if log not in (AUDIT_LOG, SETPOINT_LOG):
            check_messages(store, log, report, apart.message_pages)
    if chain is None:
        report.notes.append("the log and its anchors were not compared with a chain (none given)")
        return
    if view is None:
        raise Finding(f"cannot read anchors on chain: {chain_error}")
    compare_with_chain(view, roots, report.size)
    for anchor in stored:
        check_on_chain(chain, anchor)
        report.anchors += 1
    none_missing(store, log, view)
