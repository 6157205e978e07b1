"""Database URLs: defaults, driver mapping and display."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from sqlalchemy.engine import make_url

__all__ = ["default_database_url", "display_url", "home_dir", "normalize_database_url", "sqlite_path"]


def home_dir() -> Path:
    """``$BEARLUMEN_HOME`` or ``~/.bearlumen``."""
    configured = os.environ.get("BEARLUMEN_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".bearlumen"


def default_database_url() -> str:
    """The embedded SQLite file, ``<home>/bearlumen.db``."""
    return f"sqlite:///{home_dir() / 'bearlumen.db'}"


def normalize_database_url(url: str) -> str:
    """Map ``postgres://`` / ``postgresql://`` to the psycopg 3 driver; a bare file path means SQLite."""
    url = url.strip()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def sqlite_path(url: str) -> Optional[Path]:
    """The file behind a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def display_url(url: str) -> str:
    """The URL with any password masked, safe to print or log."""
    return make_url(url).render_as_string(hide_password=True)
