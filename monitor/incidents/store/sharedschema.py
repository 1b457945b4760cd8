"""Tables that every writer of one district shares, in the incident store's MetaData: the
teacher overrides, and the store's own settings (the pseudonym key's fingerprint).

Proxy workers and sensors on one host or several read and write them in the one store they
all record incidents to, so a grant made anywhere applies everywhere within a reload interval,
and a writer with another pseudonym key is refused instead of mixing two sets of pseudonyms.
``monitor.incidents.store.schema`` imports this module, so its ``metadata`` holds these tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from monitor.incidents.store.columns import UtcDateTime, metadata

_SEQ = BigInteger().with_variant(Integer(), "sqlite")

# One row per grant, with the fields of the former STATE_DIR/overrides.json records. Rows are
# never deleted: expired and revoked grants stay for the record.
overrides = Table(
    "overrides",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("platform", String(64), nullable=False),
    Column("granted_by", String(128), nullable=False),
    Column("granted_by_role", String(64), nullable=False, server_default="teacher"),
    Column("class_id", String(128), nullable=True),
    # The students' sourcedIds as a JSON array ("[]" for a class grant).
    Column("students", Text(), nullable=False, server_default="[]"),
    Column("starts", UtcDateTime(), nullable=False),
    Column("ends", UtcDateTime(), nullable=False),
    Column("reason", Text(), nullable=False, server_default=""),
    Column("created", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoked_by", String(128), nullable=True),
    # Order of the grants (as the file's order was), set once when the row is added.
    Column("position", _SEQ, nullable=False),
    # A store-wide change counter: every grant, revocation or import gives the rows it touches
    # max(version) + 1, under the table's write lock. Readers poll max(version) (one index
    # probe) to see whether anything changed since they last read.
    Column("version", _SEQ, nullable=False),
    Index(None, "version"),
    # Readers load only grants that can still apply (ends in the future).
    Index(None, "ends"),
)

# Settings of the store itself, one row per name. ``pseudonym_key_fingerprint``: the HMAC of a
# fixed label with the pseudonym key of the first writer (never the key itself).
store_settings = Table(
    "store_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text(), nullable=False),
)
