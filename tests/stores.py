"""A `Storage` for pipeline tests: the session's real S3 server and a fresh SQLite catalogue."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import Settings, load_settings
from storage.catalogue import Catalogue
from storage.connect import Storage
from storage.embedded_s3 import S3Endpoint
from storage.objects import ObjectStore
from tests.postgres_server import PostgresServer


def settings_for(data_dir: Path, endpoint: S3Endpoint, **overrides: object) -> Settings:
    return load_settings(
        data_dir=data_dir,
        s3_endpoint=endpoint.endpoint,
        s3_access_key=endpoint.access_key,
        s3_secret_key=endpoint.secret_key,
        **overrides,
    )


@pytest.fixture
def storage(
    tmp_path: Path, s3_endpoint: S3Endpoint, object_store: ObjectStore
) -> Iterator[Storage]:
    settings = settings_for(tmp_path / "data", s3_endpoint)
    catalogue = Catalogue.open(settings.catalogue_url)
    try:
        yield Storage(settings=settings, objects=object_store, catalogue=catalogue)
    finally:
        catalogue.close()


@pytest.fixture
def pg_storage(
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    postgres_server: PostgresServer,
) -> Iterator[Storage]:
    """Like ``storage``, with the catalogue in a fresh database on the real PostgreSQL server."""
    url = postgres_server.create_database()
    settings = settings_for(tmp_path / "data", s3_endpoint, database_url=url)
    catalogue = Catalogue.open(url)
    try:
        yield Storage(settings=settings, objects=object_store, catalogue=catalogue)
    finally:
        catalogue.close()
        postgres_server.drop_database(url)


def callrec_env(storage: Storage) -> dict[str, str]:
    """The environment for a `callrec` child process that uses the same stores as ``storage``."""
    endpoint = storage.objects.endpoint
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    return env | {
        "CALLREC_DATA_DIR": str(storage.settings.data_dir),
        "CALLREC_S3_ENDPOINT": endpoint.endpoint,
        "CALLREC_S3_ACCESS_KEY": endpoint.access_key,
        "CALLREC_S3_SECRET_KEY": endpoint.secret_key,
    }
