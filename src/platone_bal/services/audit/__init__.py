"""`bal audit`: rebuild a log from its stored rows and hold everything against it.

What an operator with the database in hand could change, and where it shows:

1. records: each reading's stored columns are what its leaf says, and the leaf bytes
   are the canonical encoding of that leaf (a value changed in the database shows
   here); for the access log `bal-audit`, each entry's bytes are a canonical leaf of
   that log and its stored columns (who sees it) are what the leaf says
   (`records`);
2. the tree: it is rebuilt from the leaves, and every stored node (each leaf hash and
   each perfect subtree: proofs are made of them) must be the rebuilt one; every signed
   checkpoint must have the rebuilt root at its size and a valid signature (`tree`);
3. payloads: every stored message's payload hashes (SHA3-256) to its digest, the
   digest the leaves name. A payload refused as too large is stored cut to the limit
   (its size is the whole payload's) and cannot be rechecked: a note counts them; a
   message that gave readings is never cut, so a cut one is a finding (`messages`);
4. anchors: each stored anchor's root is the rebuilt root at its size, and on chain its
   transaction exists, was mined in the stored block and emitted, from the registry,
   `Anchored` for that log, size and root (`chain`);
5. the chain: every anchor the chain holds for the log is in the store, the chain's
   roots are the rebuilt roots, and the store is not behind the chain's latest anchored
   size (a rollback of readings with their nodes, checkpoints and anchors shows here)
   (`chain`).

A row of the wrong shape (a leaf stored as TEXT, a root that is not 32 bytes) is a
finding that names it, never a crash (`rows`). The audit stops at the first problem and
says what differs: after that, everything depends on data already known to be wrong
(`report`). `run` holds the checks together, in this order.

The records are read a page at a time. Each page's records and the nodes inside it are
checked apart from the others (`pages`; a leaf is first matched against its columns as
bytes, `match`), and so are pages of message payloads (`messages`), in worker processes
when there are any (`schedule`, `workers`), while the tree is finished from their
results in index order (`tree`, `checkpoints`). What is checked apart only ever says
"clean" or "check it here": the findings, and their words, are those of an audit done
record by record in one process.
"""

from platone_bal.services.audit.report import AuditReport
from platone_bal.services.audit.run import audit_log
from platone_bal.services.audit.workers import Pages, StoreOpener

__all__ = ["AuditReport", "Pages", "StoreOpener", "audit_log"]
