"""Fixtures of the service tests: one real PostgreSQL per session, a fresh database per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.pg_server import Postgres, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Debian's PostgreSQL started in a temp folder on a free port (stopped at the end)."""
    pg = start_postgres()
    yield pg
    pg.stop()


@pytest.fixture
def pg_dsn(postgres: Postgres) -> str:
    """The DSN of a new, empty database on the session's server."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
