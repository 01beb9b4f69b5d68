"""Helpers shared by the benches: the bare S3 client they compare against, and memory readings."""

from __future__ import annotations

from pathlib import Path

from minio import Minio

from storage.embedded_s3 import S3Endpoint


def bare_client(endpoint: S3Endpoint) -> Minio:
    """A plain minio-SDK client on callrec's server: the library alone, for the comparisons."""
    return Minio(
        endpoint.endpoint, access_key=endpoint.access_key, secret_key=endpoint.secret_key,
        secure=False,
    )  # fmt: skip


def rss_mb(field: str, pid: int | str = "self") -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of a process, from Linux.

    Raises:
        FileNotFoundError: The process is gone.
        LookupError: The process has exited and not been reaped yet (a zombie has no memory).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)
