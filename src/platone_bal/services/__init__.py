"""Use cases: ingest, users. They orchestrate the domain and the ports; no framework here."""
