"""Schema migrations (Alembic, scripts in ``migrations/versions``), applied in one transaction.

``upgrade(db)`` is safe to call from several processes at once and a no-op at head: it takes the database's
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) before Alembic reads the current
revision, and the whole upgrade commits or rolls back as one unit, so a failed upgrade leaves the previous
schema and all data untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

VERSION_TABLE = "bearlumen_schema_version"
_SCRIPTS = Path(__file__).with_name("migrations")
_PG_LOCK_ID = 0x62656172  # any constant shared by every bearlumen process ("bear")


def _config(connection: Optional[Connection] = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head_revision() -> Optional[str]:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(db: Database) -> Optional[str]:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(db: Database) -> str:
    """Bring the schema to head; return the revision the database is at."""
    head = head_revision()
    assert head is not None
    if current_revision(db) == head:
        return head

    def run(conn: Connection) -> None:
        if not db.is_sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
        command.upgrade(_config(conn), "head")

    db.write(run)
    return head
