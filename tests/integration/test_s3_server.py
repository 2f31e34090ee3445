"""The S3 server the vault's tests run against: it stores, it checks signatures, and it can be
stopped and started again for real fault tests.
"""

from __future__ import annotations

import io
import os

import pytest
import urllib3
from minio import Minio
from minio.error import S3Error

from tests.services import S3Server


def _read(client: Minio, bucket: str, key: str) -> bytes:
    response = client.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def test_put_and_get_round_trip(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    data = os.urandom(5 * 1024 * 1024 + 17)  # bigger than weed's 4 MiB filer chunks
    client.put_object(s3_bucket, "2023/新生入学/001.bin", io.BytesIO(data), len(data))

    assert _read(client, s3_bucket, "2023/新生入学/001.bin") == data
    stat = client.stat_object(s3_bucket, "2023/新生入学/001.bin")
    assert stat.size == len(data)
    listed = [o.object_name for o in client.list_objects(s3_bucket, recursive=True)]
    assert listed == ["2023/新生入学/001.bin"]


def test_each_test_gets_its_own_empty_bucket(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    assert client.bucket_exists(s3_bucket)
    assert list(client.list_objects(s3_bucket, recursive=True)) == []


def test_requests_must_be_signed_with_the_servers_key(s3_server: S3Server, s3_bucket: str) -> None:
    wrong = Minio(
        s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key + "x",
        secure=False,
    )
    with pytest.raises(S3Error) as refused:
        wrong.put_object(s3_bucket, "k", io.BytesIO(b"x"), 1)
    assert refused.value.code == "SignatureDoesNotMatch"

    anonymous = Minio(s3_server.endpoint, secure=False)
    with pytest.raises(S3Error) as refused:
        anonymous.list_objects(s3_bucket).__next__()
    assert refused.value.code == "AccessDenied"


def test_a_stopped_server_refuses_requests_and_comes_back_with_its_data(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client(retries=0, timeout=5)
    data = b"paper copy in safe 2, box 7"
    client.put_object(s3_bucket, "before", io.BytesIO(data), len(data))

    s3_server.stop()
    assert not s3_server.running
    with pytest.raises(urllib3.exceptions.HTTPError):
        client.get_object(s3_bucket, "before")

    s3_server.start()
    assert s3_server.running
    assert _read(client, s3_bucket, "before") == data
    client.put_object(s3_bucket, "after", io.BytesIO(b"again"), 5)
    assert _read(client, s3_bucket, "after") == b"again"


def test_s3_tests_are_marked(s3_bucket: str, request: pytest.FixtureRequest) -> None:
    """``-m "not s3"`` must deselect every test that starts the S3 server."""
    assert request.node.get_closest_marker("s3") is not None
