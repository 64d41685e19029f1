"""Alembic environment: migrates the database named by the config or by UPSTACK_DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine

from upstack.config import Settings
from upstack.storage import dialect
from upstack.storage.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url


def run() -> None:
    engine = create_engine(url, **dialect.engine_kwargs(url))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=dialect.is_sqlite(url),  # SQLite alters tables by copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
