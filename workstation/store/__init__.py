"""The store: one folder holding the SQLite database and, with `index --copy`, the DICOM files."""

from workstation.store.database import Database, open_database, register_migrations
from workstation.store.location import default_store_dir, resolve_store_dir

__all__ = [
    "Database",
    "default_store_dir",
    "open_database",
    "register_migrations",
    "resolve_store_dir",
]
