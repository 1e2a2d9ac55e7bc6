"""The store's schema history (Alembic): one chain of revisions for SQLite and PostgreSQL alike."""
