"""Alembic environment: runs on the connection (and transaction) that ``bearlumen.server.migrate`` passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bearlumen.server.schema import include_object, metadata

config = context.config
version_table = config.attributes.get("version_table", "bearlumen_schema_version")


def _run(connection):  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic -x url=...` use, for maintainers
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
