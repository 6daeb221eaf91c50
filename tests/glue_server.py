"""The AWS Glue Data Catalog for the tests: moto's server (`moto_server`, server mode: the JVM's Iceberg GlueCatalog
calls it over HTTP) behind a small proxy that makes ``UpdateTable`` conditional, as Glue is.

Real Glue refuses an ``UpdateTable`` whose ``VersionId`` is not the table's current one
(ConcurrentModificationException: Iceberg's GlueCatalog then retries its commit on the new metadata). moto 5.2
ignores ``VersionId`` (moto/glue/models.py ``update_table``), so two writers both "win" and one commit is lost. The
proxy holds one lock over the check and the update: GetTable's VersionId compared with the request's, the request
forwarded only when they agree. Everything else is forwarded as it is. Started and stopped by the tests (moto by its
own process id, the proxy's thread).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, Iterator, Tuple

from tests.s3server import dev_binary, free_port

REGION = "us-west-2"


def _ready(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class ConditionalGlue(http.server.ThreadingHTTPServer):
    """The proxy: forwards every request to moto; an UpdateTable with a stale VersionId is refused as Glue does."""

    daemon_threads = True

    def __init__(self, upstream: Tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.lock, self.refused = upstream, threading.Lock(), 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ConditionalGlue

    def log_message(self, *args: object) -> None:  # quiet
        return None

    def _forward(self, body: bytes) -> Tuple[int, Dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        connection.request(self.command, self.path, body=body, headers=headers)
        answer = connection.getresponse()
        found = (answer.status, dict(answer.getheaders()), answer.read())
        connection.close()
        return found

    def _current_version(self, request: Dict[str, str]) -> str:
        ask = {"DatabaseName": request["DatabaseName"], "Name": request["TableInput"]["Name"]}
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        headers["X-Amz-Target"] = "AWSGlue.GetTable"
        connection.request("POST", "/", body=json.dumps(ask).encode(), headers=headers)
        answer = json.loads(connection.getresponse().read() or b"{}")
        connection.close()
        return str(answer.get("Table", {}).get("VersionId", ""))

    def _answer(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("X-Amz-Target") != "AWSGlue.UpdateTable":
            self._answer(*self._forward(body))
            return
        request = json.loads(body or b"{}")
        with self.server.lock:  # the check and the update as one step, as Glue's conditional update
            wanted = request.get("VersionId")
            if wanted is not None and wanted != self._current_version(request):
                self.server.refused += 1
                error = "ConcurrentModificationException"
                message = {"__type": error, "Message": f"VersionId {wanted} is not the table's current version"}
                headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": error}
                self._answer(400, headers, json.dumps(message).encode())
                return
            self._answer(*self._forward(body))

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle
    do_DELETE = _handle


def run_glue(log_path: str, timeout: float = 60.0) -> Iterator[Tuple[str, ConditionalGlue]]:
    """Start moto's server and the proxy in front of it; yield the proxy's endpoint (what ``glue.endpoint`` and
    boto3's ``endpoint_url`` are given) and the proxy (its ``refused``: the stale updates it refused); stop both."""
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [dev_binary("moto_server", "moto[server]"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    proxy = ConditionalGlue(("127.0.0.1", port))
    serving = threading.Thread(target=proxy.serve_forever, daemon=True)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(f"http://127.0.0.1:{port}"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's server did not start: see {log_path}")
            time.sleep(0.2)
        serving.start()
        yield f"http://127.0.0.1:{proxy.server_address[1]}", proxy
    finally:
        proxy.shutdown() if serving.is_alive() else None
        proxy.server_close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()
