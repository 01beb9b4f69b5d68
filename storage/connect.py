"""Open everything a callrec process stores to: the object store and the catalogue.

One entry point so every command and page gets the same behaviour: the embedded S3 server is
reused or started (and released on exit), buckets exist, and the catalogue schema is current.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from settings import Settings
from storage.catalogue import Catalogue
from storage.embedded_s3 import EmbeddedS3, S3Endpoint
from storage.objects import ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Storage:
    """The two stores of one installation, opened with its settings."""

    settings: Settings
    objects: ObjectStore
    catalogue: Catalogue


def s3_endpoint(settings: Settings) -> S3Endpoint:
    """The configured external S3 endpoint; accepts ``host:port`` or an http(s) URL."""
    assert settings.s3_endpoint, "only for an external S3 server"
    endpoint, secure = settings.s3_endpoint, settings.s3_secure
    for scheme, is_tls in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            endpoint, secure = endpoint[len(scheme) :], is_tls
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else ""
    return S3Endpoint(
        endpoint=endpoint.rstrip("/"),
        access_key=settings.s3_access_key or "",
        secret_key=secret,
        secure=secure,
        region=settings.s3_region,
    )


@contextlib.contextmanager
def open_storage(settings: Settings) -> Iterator[Storage]:
    """Connect to S3 (starting the embedded server if needed) and open the catalogue.

    Raises:
        ObjectStoreError: S3 is unreachable or rejects the keys (the message names the endpoint).
        CatalogueError: The database is unreachable.
        EmbeddedS3Error: The embedded server did not start.
    """
    _private_folder(settings.data_dir)
    with contextlib.ExitStack() as stack:
        if settings.embedded_s3:
            server = EmbeddedS3(settings.data_dir, start_timeout_s=settings.s3_start_timeout_s)
            endpoint = stack.enter_context(server)
        else:
            endpoint = s3_endpoint(settings)
        objects = ObjectStore(endpoint)
        objects.ensure_buckets(settings.buckets)
        catalogue = Catalogue.open(settings.catalogue_url)
        stack.callback(catalogue.close)
        storage = Storage(settings=settings, objects=objects, catalogue=catalogue)
        _ensure_backstop(storage)
        yield storage


def _ensure_backstop(storage: Storage) -> None:
    """The lifecycle backstop is a net under the purge, not the purge: a server without
    lifecycle rules is logged (and `callrec verify` reports the rule missing), not fatal."""
    from storage.backstop import ensure_backstop  # it needs Storage: imported here, no cycle

    try:
        ensure_backstop(storage)
    except ObjectStoreError as exc:
        log.warning("lifecycle backstop not set: %s", exc)


def _private_folder(folder: Path) -> None:
    """Create the data folder readable by its owner only, and close one left open: the embedded
    SQLite catalogue in it holds every transcript and is guarded by nothing but these
    permissions (the S3 keys beside it are 0600 too)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077 and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)
