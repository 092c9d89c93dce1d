"""Inbound adapters: where the outside world calls in and the node answers.

Kept apart from `adapters/` (outbound: what the node calls: stores, chains, brokers it
publishes to). Here: the ingest subscriber on the broker and the embedded chain's
read-only JSON-RPC server; the HTTP API (`api/`), the dashboard (`web/`) and the `bal`
command (`cli.py`) are the other entry points, each a package or module of its own.
"""
