"""Alembic environment: runs on the connection publisher hands it (see publisher.store.db)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from publisher.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if (
    connection is None
):  # run by the alembic command line: `alembic -x url=sqlite:///x.db upgrade head`
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///publisher.db")
    with create_engine(url).begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
