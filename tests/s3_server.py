"""A real SeaweedFS S3 server for the whole test session, started by callrec's own supervisor.

Tests share one bucket set and keep apart by key prefix (``key_prefix``), which is how a
production bucket is shared too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import load_settings
from storage.embedded_s3 import EmbeddedS3, S3Endpoint
from storage.objects import ObjectStore


@pytest.fixture(scope="session")
def s3_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-session")


@pytest.fixture(scope="session")
def s3_endpoint(s3_data_dir: Path) -> Iterator[S3Endpoint]:
    server = EmbeddedS3(s3_data_dir)
    with server as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def object_store(s3_endpoint: S3Endpoint) -> ObjectStore:
    store = ObjectStore(s3_endpoint)
    store.ensure_buckets(load_settings(data_dir=Path("/nonexistent")).buckets)
    return store


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so tests sharing the buckets never see each other."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"t/{name}-{uuid.uuid4().hex[:8]}/"
