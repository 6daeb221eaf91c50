"""A small TCP proxy in front of the benchmark's S3 server: it counts HTTP requests and can delay each one.

    proxy = S3Proxy("127.0.0.1", 8333, delay=0.020)   # 20 ms before each request is forwarded
    proxy.start()                                      # listens on 127.0.0.1:proxy.port (a thread of its own)
    ...
    requests = proxy.take()                            # [(time.time(), method, target, first_deleted_key)]
    proxy.stop()

The client -> server bytes are read as HTTP/1.1 requests (request line and headers, then the body
by Content-Length or chunked transfer encoding), so a request is counted once whichever way TCP
cuts it into reads, and its method and target are kept for the benchmark to attribute (the
object key, the prefix of a listing, the first key of a bulk delete). With ``delay`` each
request waits that long before its first byte goes on to the server: one added round trip per
request, as a far-away S3 costs. Server -> client bytes pass unchanged.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import List, Optional, Tuple

# (time.time(), method ("COPY" for a PUT with x-amz-copy-source), target, first key of a bulk delete or "")
Request = Tuple[float, str, str, str]
HEAD_LIMIT = 1 << 20
CHUNK = 1 << 16
FIRST_KEY = re.compile(rb"<Key>([^<]*)</Key>")


class S3Proxy:
    def __init__(self, upstream_host: str, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.port = 0
        self._requests: List[Request] = []
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()

    # -- the benchmark's side -------------------------------------------------------------------

    def start(self) -> S3Proxy:
        self._thread = threading.Thread(target=self._serve, name="s3proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the S3 proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def take(self) -> List[Request]:
        """The requests seen since the last take()."""
        with self._lock:
            taken, self._requests = self._requests, []
        return taken

    def __enter__(self) -> S3Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the event loop's side ------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._client, "127.0.0.1", 0, limit=HEAD_LIMIT, backlog=512)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        finally:
            self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=HEAD_LIMIT)
        except OSError:
            writer.close()
            return
        to_server = asyncio.ensure_future(self._requests_to(reader, up_writer))
        to_client = asyncio.ensure_future(self._copy(up_reader, writer))
        await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
        for task in (to_server, to_client):
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a reset connection is no news
            task.cancel()
        for w in (writer, up_writer):
            w.close()

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            writer.write(data)
            await writer.drain()

    async def _requests_to(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward requests one by one: count, wait the delay, pass the head, then the body."""
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:  # the client closed (between requests, normally)
                if exc.partial:
                    writer.write(exc.partial)
                return
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            method = parts[0].decode("latin-1")
            target = parts[1].decode("latin-1") if len(parts) > 1 else ""
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
            length = int(headers.get(b"content-length", b"0") or 0)
            body_first = b""
            if method == "POST" and "delete" in target.split("?", 1)[-1] and not chunked and length <= HEAD_LIMIT:
                body_first = await reader.readexactly(length)  # a bulk delete: note the first key deleted
                length = 0
            found = FIRST_KEY.search(body_first)
            if b"x-amz-copy-source" in headers:
                method = "COPY"  # a server-side copy (PUT with x-amz-copy-source): S3's half of a rename
            with self._lock:
                self._requests.append((time.time(), method, target, found.group(1).decode() if found else ""))
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(head + body_first)
            if chunked:
                await self._chunked_body(reader, writer)
            while length > 0:
                data = await reader.read(min(length, CHUNK))
                if not data:
                    return
                writer.write(data)
                length -= len(data)
                await writer.drain()
            await writer.drain()

    async def _chunked_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:  # trailers, up to an empty line
                while True:
                    trailer = await reader.readuntil(b"\r\n")
                    writer.write(trailer)
                    if trailer == b"\r\n":
                        return
            remaining = size + 2  # the chunk and its CRLF
            while remaining > 0:
                data = await reader.read(min(remaining, CHUNK))
                if not data:
                    raise asyncio.IncompleteReadError(b"", remaining)
                writer.write(data)
                remaining -= len(data)
            await writer.drain()
