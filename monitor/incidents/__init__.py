"""Incidents: what to remember, and who looked at it. Incident events and their dedupe
buckets, the recorder (queue, writer thread, spool), the store (SQLite or PostgreSQL, schema
and Alembic migrations; what every writer of a district shares there: teacher overrides, the
pseudonym key's fingerprint), retention, and the record of access (FERPA 34 CFR 99.32).

Imports only ``monitor.model`` and ``monitor.yamlfile``: any stage above may record.
"""
