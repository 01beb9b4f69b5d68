"""The object store: a small layer over the minio SDK that speaks callrec's language.

Why a layer: every S3 failure must reach the user as one line naming the endpoint, bucket and key
and what to do; transient failures (a restarting server, a 503) must be retried with backoff in
one place; and deletion must mean *every version*, because a versioned bucket keeps the bytes of
a "deleted" object otherwise, which would break the retention promise.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar

from minio import Minio
from minio.commonconfig import AndOperator, CopySource, Filter, Tags
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, NoncurrentVersionExpiration, Rule
from minio.versioningconfig import ENABLED, VersioningConfig
from urllib3 import PoolManager, Retry, Timeout
from urllib3.exceptions import HTTPError

from errors import CallrecError
from settings import BucketNames
from storage.embedded_s3 import S3Endpoint

T = TypeVar("T")

SHA256_META = "sha256"
_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "ResourceNotFound"}
_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
# A server that lacks a feature (object lock, lifecycle) answers with one of these.
_UNSUPPORTED_CODES = {"NotImplemented", "MethodNotAllowed"}
_NO_LOCK_CODES = _UNSUPPORTED_CODES | {"ObjectLockConfigurationNotFoundError"}
# Asked for the legal hold of a version that never had one (SeaweedFS; minio-py maps only
# NoSuchObjectLockConfiguration to "off").
_NO_LEGAL_HOLD_CODES = {"NoSuchObjectLegalHold"}
_MAX_PRESIGN_S = 7 * 24 * 3600
_BATCH = 1000  # S3's DeleteObjects limit


def one_line(key: str) -> str:
    """A key as an error or log line shows it: whole (the operator needs it to find the object),
    but a newline or other control character escaped, so one error stays one line (and a
    backslash too, so a key holding the two characters ``\\n`` is not shown as a newline's)."""
    return "".join(
        c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode() for c in key
    )


class ObjectStoreError(CallrecError):
    """An S3 call failed; carries the endpoint, bucket and key it was about."""

    def __init__(
        self, message: str, *, endpoint: str, bucket: str = "", key: str = "", hint: str = ""
    ):
        where = f"s3://{bucket}/{one_line(key)}" if key else (f"bucket {bucket}" if bucket else "")
        super().__init__(f"{message} ({endpoint}{' ' + where if where else ''})", hint=hint)
        self.endpoint, self.bucket, self.key = endpoint, bucket, key


class ObjectNotFoundError(ObjectStoreError):
    """The bucket or key does not exist."""


class ObjectStoreAuthError(ObjectStoreError):
    """The server rejected our credentials."""


class ObjectStoreUnavailableError(ObjectStoreError):
    """The server could not be reached or kept failing after retries."""


class ObjectLockedError(ObjectStoreError):
    """The server refused to delete versions (AccessDenied per object): a legal hold or
    object-lock retention protects them, so a purge must say so rather than skip them."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient failures: attempts in all, including the first."""

    attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0

    def delays(self) -> Iterator[float]:
        for attempt in range(self.attempts - 1):
            yield min(self.base_delay_s * 2**attempt, self.max_delay_s)


@dataclass(frozen=True)
class ObjectInfo:
    """One object (or one version of it, or a delete marker) as listed or stat'ed."""

    bucket: str
    key: str
    size: int
    etag: str = ""
    last_modified: datetime | None = None
    version_id: str | None = None
    is_delete_marker: bool = False
    is_latest: bool = True
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str | None:
        return self.metadata.get(SHA256_META)


class ObjectStore:
    """Object-store operations against one S3 endpoint.

    Args:
        endpoint: Where the server is and the credentials to use.
        retry: How transient failures are retried.
    """

    def __init__(self, endpoint: S3Endpoint, *, retry: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        # The SDK's own urllib3 retries are off: retrying happens here, once, with our policy.
        http = PoolManager(
            timeout=Timeout(connect=5, read=60), retries=Retry(total=0, redirect=0), maxsize=16
        )
        self._client = Minio(
            endpoint.endpoint,
            access_key=endpoint.access_key,
            secret_key=endpoint.secret_key,
            secure=endpoint.secure,
            region=endpoint.region,
            http_client=http,
        )

    # -- buckets ---------------------------------------------------------------------------

    def ensure_buckets(self, buckets: BucketNames) -> None:
        """Create callrec's buckets if missing; the recordings bucket keeps versions so an
        overwrite can never silently replace the evidence of a dispute.

        A recordings bucket created here gets S3 object lock (which implies versioning), so a
        disputed call's versions can carry a legal hold the server itself enforces. Object lock
        can only be chosen when a bucket is made: an existing bucket is left as it is, and
        :meth:`object_lock_enabled` tells the holds code what it can rely on.
        """
        for bucket in buckets.all():
            if not self._call(partial(self._client.bucket_exists, bucket), bucket=bucket):
                lock = bucket == buckets.recordings
                self._call(
                    partial(self._client.make_bucket, bucket, object_lock=lock), bucket=bucket
                )
        self._call(
            lambda: self._client.set_bucket_versioning(
                buckets.recordings, VersioningConfig(ENABLED)
            ),
            bucket=buckets.recordings,
        )

    def check_access(self, bucket: str) -> None:
        """Fail fast with a clear error if the server is unreachable or rejects our keys."""
        if not self._call(lambda: self._client.bucket_exists(bucket), bucket=bucket):
            raise ObjectNotFoundError(
                "bucket does not exist",
                endpoint=self.endpoint.url,
                bucket=bucket,
                hint="start callrec once with this configuration to create it",
            )

    def bucket_names(self) -> list[str]:
        """Every bucket on the server our keys can see (for the purge registry's coverage)."""
        return sorted(b.name for b in self._call(self._client.list_buckets))

    def versioning_enabled(self, bucket: str) -> bool:
        config = self._call(lambda: self._client.get_bucket_versioning(bucket), bucket=bucket)
        return config.status == ENABLED

    def object_lock_enabled(self, bucket: str) -> bool:
        """True when ``bucket`` was made with S3 object lock, so its versions can carry legal
        holds; a bucket or server without object lock is False, not an error."""

        def probe() -> bool:
            try:
                self._client.get_object_lock_config(bucket)
            except S3Error as exc:
                if exc.code in _NO_LOCK_CODES:
                    return False
                raise
            return True

        return self._call(probe, bucket=bucket)

    def set_expiry_rule(
        self,
        bucket: str,
        *,
        rule_id: str,
        prefix: str,
        days: int,
        tag: tuple[str, str],
        noncurrent_days: int,
    ) -> None:
        """Put the lifecycle rule ``rule_id``: current versions under ``prefix`` that carry
        ``tag`` (key, value) expire ``days`` after they were written, and versions that are no
        longer current ``noncurrent_days`` after that. The bucket's other rules are kept.

        Raises:
            ObjectStoreError: The server refused, e.g. it does not support lifecycle rules.
        """
        tags = Tags()
        tags[tag[0]] = tag[1]
        rule = Rule(
            ENABLED,
            rule_filter=Filter(and_operator=AndOperator(prefix, tags)),
            rule_id=rule_id,
            expiration=Expiration(days=days),
            noncurrent_version_expiration=NoncurrentVersionExpiration(
                noncurrent_days=noncurrent_days
            ),
        )

        def apply() -> None:
            current = self._client.get_bucket_lifecycle(bucket)
            others = [r for r in (current.rules if current else []) if r.rule_id != rule_id]
            self._client.set_bucket_lifecycle(bucket, LifecycleConfig([*others, rule]))

        self._call(apply, bucket=bucket)

    def expiry_rule(self, bucket: str, rule_id: str) -> int | None:
        """The expiration days of the enabled lifecycle rule ``rule_id``; None when the bucket
        has no such rule or the server does not support lifecycle rules."""

        def read() -> int | None:
            try:
                config = self._client.get_bucket_lifecycle(bucket)
            except S3Error as exc:
                if exc.code in _UNSUPPORTED_CODES:
                    return None
                raise
            for rule in config.rules if config else []:
                if rule.rule_id == rule_id and rule.status == ENABLED and rule.expiration:
                    return rule.expiration.days
            return None

        return self._call(read, bucket=bucket)

    # -- writing ---------------------------------------------------------------------------

    def put(
        self,
        bucket: str,
        key: str,
        source: bytes | Path,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
        tags: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Store bytes or a file, with its sha256 in the object's user metadata.

        The checksum travels with the object so anyone holding it can prove it is unaltered;
        ``tags`` are object tags, which (unlike metadata) lifecycle rules can select on.

        Returns:
            The stored object, with its version id when the bucket is versioned.
        """
        digest, size = sha256_of(source)
        meta = {**(metadata or {}), SHA256_META: digest}

        def upload() -> ObjectInfo:
            with _open_source(source) as stream:
                result = self._client.put_object(
                    bucket,
                    key,
                    stream,
                    size,
                    content_type=content_type,
                    metadata=meta,  # type: ignore[arg-type]
                    tags=_object_tags(tags) if tags else None,
                )
            return ObjectInfo(
                bucket=bucket,
                key=key,
                size=size,
                etag=result.etag or "",
                version_id=result.version_id,
                content_type=content_type,
                metadata=meta,
            )

        return self._call(upload, bucket=bucket, key=key)

    def set_tags(
        self, bucket: str, key: str, tags: Mapping[str, str], *, version_id: str | None
    ) -> None:
        """Replace the object tags of one version (every version has its own tag set)."""
        self._call(
            lambda: self._client.set_object_tags(
                bucket, key, _object_tags(tags), version_id=version_id
            ),
            bucket=bucket,
            key=key,
        )

    def set_legal_hold(self, bucket: str, key: str, *, version_id: str | None, on: bool) -> None:
        """Switch the S3 legal hold of one version: while it is on, the server refuses to
        delete that version, whoever asks (the bucket must have object lock)."""
        switch = (
            self._client.enable_object_legal_hold if on else self._client.disable_object_legal_hold
        )
        self._call(lambda: switch(bucket, key, version_id=version_id), bucket=bucket, key=key)

    def copy(self, bucket: str, key: str, *, to_bucket: str, to_key: str) -> None:
        """Server-side copy, metadata included: quarantining a large recording moves no bytes
        through this process."""
        self._call(
            lambda: self._client.copy_object(to_bucket, to_key, CopySource(bucket, key)),
            bucket=bucket,
            key=key,
        )

    # -- reading ---------------------------------------------------------------------------

    def stat(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        found = self._call(
            lambda: self._client.stat_object(bucket, key, version_id=version_id),
            bucket=bucket,
            key=key,
        )
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=found.size or 0,
            etag=found.etag or "",
            last_modified=found.last_modified,
            version_id=found.version_id,
            content_type=found.content_type or "",
            metadata=_user_metadata(found.metadata or {}),
        )

    def tags(self, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, str]:
        """The object tags of one version ({} when it has none)."""
        found = self._call(
            lambda: self._client.get_object_tags(bucket, key, version_id=version_id),
            bucket=bucket,
            key=key,
        )
        return dict(found or {})

    def legal_hold(self, bucket: str, key: str, *, version_id: str | None = None) -> bool:
        """Whether one version is under an S3 legal hold (never set counts as off)."""

        def read() -> bool:
            try:
                return self._client.is_object_legal_hold_enabled(bucket, key, version_id=version_id)
            except S3Error as exc:
                if exc.code in _NO_LEGAL_HOLD_CODES:
                    return False
                raise

        return self._call(read, bucket=bucket, key=key)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.stat(bucket, key)
        except ObjectNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def open(
        self,
        bucket: str,
        key: str,
        *,
        offset: int = 0,
        length: int | None = None,
        version_id: str | None = None,
    ) -> Iterator[BinaryIO]:
        """Stream an object, or the byte range ``[offset, offset + length)`` of it."""
        response = self._call(
            lambda: self._client.get_object(
                bucket, key, offset=offset, length=length or 0, version_id=version_id
            ),
            bucket=bucket,
            key=key,
        )
        try:
            yield response  # type: ignore[misc]
        finally:
            response.close()
            response.release_conn()

    def read(self, bucket: str, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        with self.open(bucket, key, offset=offset, length=length) as stream:
            return stream.read()

    def download(self, bucket: str, key: str, path: Path) -> Path:
        """Stream an object to a local file without holding it in memory."""
        with self.open(bucket, key) as stream, open(path, "wb") as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                out.write(chunk)
        return path

    def list(
        self, bucket: str, *, prefix: str = "", start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        """Current objects under ``prefix`` in key order, after ``start_after`` if given (a
        checkpoint, so a poller need not re-list a large bucket from the start)."""
        listing = self._client.list_objects(
            bucket, prefix=prefix or None, recursive=True, start_after=start_after or None
        )
        for item in self._iterate(listing, bucket=bucket):
            yield ObjectInfo(
                bucket=bucket,
                key=item.object_name or "",
                size=item.size or 0,
                etag=item.etag or "",
                last_modified=item.last_modified,
            )

    def list_versions(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every version and delete marker under ``prefix``: what a retention scan must see."""
        listing = self._client.list_objects(
            bucket, prefix=prefix or None, recursive=True, include_version=True
        )
        for item in self._iterate(listing, bucket=bucket):
            yield ObjectInfo(
                bucket=bucket,
                key=item.object_name or "",
                size=item.size or 0,
                etag=item.etag or "",
                last_modified=item.last_modified,
                version_id=item.version_id,
                is_delete_marker=bool(item.is_delete_marker),
                is_latest=item.is_latest == "true" or item.is_latest is True,
            )

    def presigned_get(self, bucket: str, key: str, *, expires_s: int = 300) -> str:
        """A URL that lets a browser fetch one object for ``expires_s`` seconds, so audio is
        played without ever making a bucket public."""
        if not 1 <= expires_s <= _MAX_PRESIGN_S:
            raise ValueError(f"expires_s must be between 1 and {_MAX_PRESIGN_S}, got {expires_s}")
        return self._call(
            lambda: self._client.presigned_get_object(
                bucket, key, expires=timedelta(seconds=expires_s)
            ),
            bucket=bucket,
            key=key,
        )

    # -- deleting --------------------------------------------------------------------------

    def delete(self, bucket: str, key: str) -> int:
        """Delete every version and delete marker of ``key``; returns how many were removed."""
        return self.delete_many(bucket, [key])

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every version and delete marker of every key under ``prefix`` (one listing,
        batched deletes); returns how many were removed."""
        if not prefix:
            raise ValueError("refusing to delete a whole bucket: give a non-empty prefix")
        targets = [
            DeleteObject(v.key, v.version_id) for v in self.list_versions(bucket, prefix=prefix)
        ]
        return self._delete_batches(bucket, targets)

    def delete_prefixes(self, bucket: str, prefixes: Sequence[str], *, workers: int = 8) -> int:
        """:meth:`delete_prefix` for many prefixes at once: the listings run in parallel (one
        request each, the slow part) and the versions go 1000 per delete request."""
        if not all(prefixes):
            raise ValueError("refusing to delete a whole bucket: give non-empty prefixes")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            listed = pool.map(lambda p: list(self.list_versions(bucket, prefix=p)), prefixes)
            targets = [DeleteObject(v.key, v.version_id) for found in listed for v in found]
        return self._delete_batches(bucket, targets)

    def delete_many(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete every version of each key, in batches of 1000; returns how many were removed.

        Raises:
            ObjectStoreError: Some deletes failed; nothing is reported deleted that still exists.
        """
        targets: list[DeleteObject] = []
        for key in keys:
            versions = [v for v in self.list_versions(bucket, prefix=key) if v.key == key]
            targets.extend(DeleteObject(key, v.version_id) for v in versions)
        return self._delete_batches(bucket, targets)

    def _delete_batches(self, bucket: str, targets: Sequence[DeleteObject]) -> int:
        removed = 0
        for start in range(0, len(targets), _BATCH):
            batch = targets[start : start + _BATCH]
            errors = list(self._iterate(self._client.remove_objects(bucket, batch), bucket=bucket))
            if errors:
                first = errors[0]
                message = (
                    f"{len(errors)} of {len(batch)} deletes failed: {first.code} {first.message}"
                )
                where = {"endpoint": self.endpoint.url, "bucket": bucket, "key": first.name or ""}
                if any(error.code == "AccessDenied" for error in errors):
                    raise ObjectLockedError(
                        message,
                        **where,
                        hint="a legal hold may protect these versions: `callrec release CALL_ID` "
                        "clears one an interrupted release left behind; they are still there",
                    )
                raise ObjectStoreError(
                    message, **where, hint="retry; the objects that failed are still there"
                )
            removed += len(batch)
        return removed

    # -- errors and retries ----------------------------------------------------------------

    def _iterate(self, iterable: Iterable[T], *, bucket: str) -> Iterator[T]:
        """Map errors raised while paging through a listing (retries would repeat items)."""
        try:
            yield from iterable
        except (S3Error, HTTPError, OSError) as exc:
            raise self._translate(exc, bucket=bucket, key="") from None

    def _call(self, operation: Callable[[], T], *, bucket: str = "", key: str = "") -> T:
        delays = self.retry.delays()
        while True:
            try:
                return operation()
            except (S3Error, HTTPError, OSError) as exc:
                error = self._translate(exc, bucket=bucket, key=key)
                delay = next(delays, None) if _is_transient(exc) else None
                if delay is None:
                    raise error from None
                time.sleep(delay)

    def _translate(self, exc: Exception, *, bucket: str, key: str) -> ObjectStoreError:
        url = self.endpoint.url
        if isinstance(exc, S3Error):
            if exc.code in _AUTH_CODES:
                return ObjectStoreAuthError(
                    f"S3 refused the request: {exc.code}",
                    endpoint=url,
                    bucket=bucket,
                    key=key,
                    hint="check CALLREC_S3_ACCESS_KEY and CALLREC_S3_SECRET_KEY",
                )
            if exc.code in _MISSING_CODES:
                return ObjectNotFoundError(
                    f"not found: {exc.code}",
                    endpoint=url,
                    bucket=bucket,
                    key=key,
                    hint="check the bucket name settings and the key",
                )
            return ObjectStoreError(
                f"S3 error {exc.code}: {exc.message}",
                endpoint=url,
                bucket=bucket,
                key=key,
                hint="see the S3 server's log",
            )
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ObjectStoreUnavailableError(
            f"cannot reach the S3 server: {reason}",
            endpoint=url,
            bucket=bucket,
            key=key,
            hint="is it running? check CALLREC_S3_ENDPOINT and CALLREC_S3_SECURE",
        )


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_CODES
    return True  # connection refused, reset, timeout: the server may be restarting


def _object_tags(tags: Mapping[str, str]) -> Tags:
    """minio's tag set; filled key by key, since only item assignment checks S3's limits."""
    found = Tags.new_object_tags()
    for key, value in tags.items():
        found[key] = value
    return found


def _user_metadata(headers: object) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else []
    prefix = "x-amz-meta-"
    return {k.lower()[len(prefix) :]: v for k, v in items if k.lower().startswith(prefix)}


def sha256_of(source: bytes | Path) -> tuple[str, int]:
    """The sha256 (hex) and size of bytes or a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with _open_source(source) as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _open_source(source: bytes | Path) -> Iterator[BinaryIO]:
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        with open(source, "rb") as handle:
            yield handle
