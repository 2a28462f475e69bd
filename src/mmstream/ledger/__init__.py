"""The provenance ledger: SQLite by default, PostgreSQL by URL."""
