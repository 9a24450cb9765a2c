"""An S3-compatible server for tests: moto's standalone server (PyPI ``moto[server]``) on loopback.

Why moto: it installs from PyPI with the test extra (MinIO's server is not in our registries), it
speaks the S3 REST API that boto3 talks to a real bucket, and it enforces Object Lock: a locked
object version cannot be deleted before its retain-until date (AccessDenied), which is what the
archive's tests must see the storage refuse. It runs in its own process, so the bridge's memory
figures do not include the server's. Each test gets its own bucket, created with Object Lock.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

CREDENTIALS = {"storage_access_key_id": "testing", "storage_secret_access_key": "testing",
               "storage_region": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_s3() -> Iterator[str]:
    """Start moto's S3 server on loopback; yields its endpoint URL."""
    port = _free_port()
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@functools.lru_cache(maxsize=4)
def client(endpoint: str) -> Any:
    """One boto3 client per endpoint for the whole session (a client per call would leak sockets)."""
    import boto3

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def new_bucket(endpoint: str, object_lock: bool = True) -> str:
    """A fresh bucket (Object Lock enabled, hence versioned) on the server; returns its name."""
    name = f"lre-{uuid.uuid4().hex[:12]}"
    client(endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name


def s3_settings(endpoint: str, bucket: str, prefix: str = "archive") -> dict[str, Any]:
    """Settings overrides that put a test app's archive in ``bucket``."""
    return {"storage_url": f"s3://{bucket}/{prefix}", "storage_endpoint_url": endpoint, **CREDENTIALS}
