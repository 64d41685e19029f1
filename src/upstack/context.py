"""What every request and worker shares: settings, database, lake. Created once per process.

A neutral module above storage and lake and below api, worker and seed, so that each of them can hold one
without importing another (docs/ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

from dataclasses import dataclass

from upstack.config import Settings
from upstack.lake import Lake
from upstack.storage.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    lake: Lake

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings=settings, db=Database(settings.resolved_database_url), lake=Lake(settings.lake_root))
