"""Alembic revision scripts of the incident store, one per schema change, applied in order by
``monitor.incidents.store.migrations.upgrade``."""
