"""The object-store layer against the real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from settings import load_settings
from storage.embedded_s3 import S3Endpoint
from storage.objects import (
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreAuthError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
    RetryPolicy,
    one_line,
)

BUCKETS = load_settings(data_dir=Path("/nonexistent")).buckets


def test_put_keeps_user_metadata_and_records_sha256(object_store: ObjectStore, key_prefix: str):
    data = b"RIFF....fake audio bytes"
    key = key_prefix + "call.wav"
    stored = object_store.put(
        BUCKETS.incoming,
        key,
        data,
        metadata={"call_id": "c-1", "agent_id": "a7"},
        content_type="audio/wav",
    )
    info = object_store.stat(BUCKETS.incoming, key)
    assert info.metadata["call_id"] == "c-1"
    assert info.metadata["agent_id"] == "a7"
    assert info.sha256 == stored.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert info.content_type == "audio/wav"


def test_put_of_a_file_streams_it_and_hashes_the_same_bytes(
    object_store: ObjectStore, key_prefix: str, tmp_path: Path
):
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 20_000)  # 5 MB: several read chunks
    key = key_prefix + "big.bin"
    object_store.put(BUCKETS.incoming, key, path)
    assert (
        object_store.stat(BUCKETS.incoming, key).sha256
        == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    copy = object_store.download(BUCKETS.incoming, key, tmp_path / "copy.bin")
    assert copy.read_bytes() == path.read_bytes()


def test_range_get_returns_exactly_the_requested_bytes(object_store: ObjectStore, key_prefix: str):
    key = key_prefix + "range.bin"
    data = bytes(range(256)) * 4
    object_store.put(BUCKETS.incoming, key, data)
    assert object_store.read(BUCKETS.incoming, key, offset=10, length=5) == data[10:15]
    assert object_store.read(BUCKETS.incoming, key, offset=1000) == data[1000:]
    with object_store.open(BUCKETS.incoming, key) as stream:
        assert stream.read(3) == data[:3]


def test_list_filters_by_prefix_and_resumes_after_a_checkpoint(
    object_store: ObjectStore, key_prefix: str
):
    keys = [f"{key_prefix}{name}" for name in ("a.wav", "b.wav", "c.wav", "sub/d.wav")]
    for key in keys:
        object_store.put(BUCKETS.incoming, key, b"x")
    listed = [o.key for o in object_store.list(BUCKETS.incoming, prefix=key_prefix)]
    assert listed == sorted(keys)
    after_b = [
        o.key for o in object_store.list(BUCKETS.incoming, prefix=key_prefix, start_after=keys[1])
    ]
    assert after_b == keys[2:]


def test_recordings_bucket_is_versioned(object_store: ObjectStore):
    assert object_store.versioning_enabled(BUCKETS.recordings)
    assert not object_store.versioning_enabled(BUCKETS.incoming)


def test_delete_removes_every_version_and_delete_marker(object_store: ObjectStore, key_prefix: str):
    key = key_prefix + "evidence.wav"
    neighbour = key + ".json"  # shares the key as a prefix and must survive
    for version in range(3):
        object_store.put(BUCKETS.recordings, key, f"version {version}".encode())
    object_store.put(BUCKETS.recordings, neighbour, b"{}")
    object_store._client.remove_object(BUCKETS.recordings, key)  # a plain delete: leaves a marker
    before = [v for v in object_store.list_versions(BUCKETS.recordings, prefix=key) if v.key == key]
    assert len(before) == 4 and sum(v.is_delete_marker for v in before) == 1

    assert object_store.delete(BUCKETS.recordings, key) == 4

    remaining = list(object_store.list_versions(BUCKETS.recordings, prefix=key_prefix))
    assert [v.key for v in remaining] == [neighbour]


def test_delete_many_removes_all_given_keys_in_batches(object_store: ObjectStore, key_prefix: str):
    keys = [f"{key_prefix}{i:04d}" for i in range(30)]
    for key in keys:
        object_store.put(BUCKETS.recordings, key, b"a")
        object_store.put(BUCKETS.recordings, key, b"b")
    assert object_store.delete_many(BUCKETS.recordings, keys[:20]) == 40
    left = {v.key for v in object_store.list_versions(BUCKETS.recordings, prefix=key_prefix)}
    assert left == set(keys[20:])


def test_presigned_url_serves_the_object_and_then_expires(
    object_store: ObjectStore, key_prefix: str
):
    key = key_prefix + "play.wav"
    object_store.put(BUCKETS.recordings, key, b"audio")
    url = object_store.presigned_get(BUCKETS.recordings, key, expires_s=2)
    assert urllib.request.urlopen(url, timeout=5).read() == b"audio"
    time.sleep(3)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 403


def test_presigned_url_lifetime_is_bounded(object_store: ObjectStore):
    with pytest.raises(ValueError, match="expires_s"):
        object_store.presigned_get(BUCKETS.recordings, "k", expires_s=8 * 24 * 3600)


def test_anonymous_access_is_refused(
    s3_endpoint: S3Endpoint, object_store: ObjectStore, key_prefix: str
):
    key = key_prefix + "secret.wav"
    object_store.put(BUCKETS.recordings, key, b"private")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{s3_endpoint.url}/{BUCKETS.recordings}/{key}", timeout=5)
    assert refused.value.code == 403


def test_wrong_secret_is_rejected_with_an_error_naming_the_endpoint(s3_endpoint: S3Endpoint):
    wrong = S3Endpoint(s3_endpoint.endpoint, s3_endpoint.access_key, "not-the-secret")
    with pytest.raises(ObjectStoreAuthError) as error:
        ObjectStore(wrong).check_access(BUCKETS.recordings)
    message = str(error.value)
    assert s3_endpoint.endpoint in message
    assert "CALLREC_S3_SECRET_KEY" in message
    assert "\n" not in message


def test_missing_object_raises_not_found_with_bucket_and_key(
    object_store: ObjectStore, key_prefix: str
):
    with pytest.raises(ObjectNotFoundError) as error:
        object_store.stat(BUCKETS.recordings, key_prefix + "nope")
    assert f"s3://{BUCKETS.recordings}/{key_prefix}nope" in str(error.value)
    assert not object_store.exists(BUCKETS.recordings, key_prefix + "nope")


def test_unreachable_server_is_retried_then_reported(unused_port: int):
    store = ObjectStore(
        S3Endpoint(f"127.0.0.1:{unused_port}", "k", "s"),
        retry=RetryPolicy(attempts=3, base_delay_s=0.05),
    )
    started = time.monotonic()
    with pytest.raises(ObjectStoreUnavailableError) as error:
        store.check_access(BUCKETS.incoming)
    assert time.monotonic() - started >= 0.05 + 0.1  # both backoff delays were waited
    assert f"127.0.0.1:{unused_port}" in str(error.value)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_error_about_an_odd_key_is_one_line_and_names_the_whole_key():
    key = "pbx/line\nbreak\u2028\x00é 📞.wav"
    error = ObjectStoreError("not found", endpoint="s3:9000", bucket="incoming", key=key)
    assert "\n" not in str(error) and "\u2028" not in str(error) and "\x00" not in str(error)
    assert "s3://incoming/pbx/line\\nbreak\\u2028\\x00é 📞.wav" in str(error)
    # A key holding a backslash and an n is told apart from one holding a newline.
    assert one_line("a\\nb") == "a\\\\nb" != one_line("a\nb") == "a\\nb"
