"""Alembic environment of the incident store. Run through
:func:`monitor.incidents.store.migrations.upgrade` (which hands over a connection), or with the
``alembic`` command and ``-x url=…``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from monitor.incidents.store.schema import metadata
from monitor.incidents.store.sql import normalise_url

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the store URL: alembic -x url=sqlite:///path upgrade head --sql")
    context.configure(
        url=normalise_url(url), target_metadata=metadata, literal_binds=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the store URL: alembic -x url=sqlite:///path upgrade head")
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
