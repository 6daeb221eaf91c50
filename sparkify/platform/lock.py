"""One writer per output: a run holds its output root from start to report.

The hold is a small JSON object at OUTPUT/_lock.json, created only if absent: a local file
opened with O_EXCL, or on S3 a conditional PUT (``If-None-Match: *``), so two runs can never
both take it. It says who holds it (run id, host, pid, since) and is refreshed every minute.
A hold is taken over when its holder is gone: its process no longer runs (same host), or its
refresh is older than STALE_SECONDS (a holder on another machine, e.g. a terminated cluster).
The take-over replaces exactly the stale hold that was read, so among runs that find the same stale
hold at once only one takes it: locally under an exclusive ``flock`` of a side file, on S3 by a
conditional PUT on the stale object's ETag (``If-Match``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import threading
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.platform import s3
from sparkify.platform.fs import join_uri, local_path

LOCK = "_lock.json"
REFRESH_SECONDS = 60.0
STALE_SECONDS = 600.0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _process_start(pid: int) -> Optional[str]:
    """The start time of a process (Linux /proc: field 22 of stat), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class Holder:
    run_id: str
    mode: str
    host: str
    pid: int
    since: str
    refreshed: str
    process_start: Optional[str] = None

    @classmethod
    def me(cls, run_id: str, mode: str) -> Holder:
        now = _now()
        return cls(run_id, mode, socket.gethostname(), os.getpid(), now, now, _process_start(os.getpid()))

    def gone(self) -> bool:
        """True when the holder surely no longer runs."""
        if self.host == socket.gethostname():
            return _process_start(self.pid) != self.process_start or self.process_start is None
        refreshed = dt.datetime.fromisoformat(self.refreshed)
        return (dt.datetime.now(dt.timezone.utc) - refreshed).total_seconds() > STALE_SECONDS

    def describe(self) -> str:
        return f"run {self.run_id} ({self.mode}) on host {self.host}, pid {self.pid}, since {self.since}"


def _parse(text: Optional[str]) -> Optional[Holder]:
    try:
        body: Dict[str, Any] = json.loads(text or "")
        return Holder(**body)
    except (ValueError, TypeError):
        return None  # half-written or foreign: treated as a hold by an unknown holder


class _LocalStore:
    def __init__(self, uri: str) -> None:
        self.path = local_path(uri)

    def create(self, text: str) -> bool:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return True

    def read(self) -> Optional[str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return None

    def read_tagged(self) -> Tuple[Optional[str], str]:
        text = self.read()
        return text, text or ""

    def take_over(self, tag: str, text: str) -> bool:
        """Replace the hold read as ``tag`` (its text) by ``text``, unless another taker did first."""
        with open(f"{self.path}.take", "a", encoding="utf-8") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # takers one at a time; released when closed
            if self.read() != tag:
                return False
            self.overwrite(text)
            return True

    def overwrite(self, text: str) -> None:
        tmp = f"{self.path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, self.path)

    def delete(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


class _S3Store:
    """The lock object through the S3 API (boto3): S3A has no conditional PUT. Errors name the
    lock's URI (sparkify.core.errors then explains them as for any S3 failure)."""

    def __init__(self, uri: str, settings: Settings) -> None:
        parsed = urlparse(uri)
        self.uri, self.bucket, self.key = uri, parsed.netloc, parsed.path.lstrip("/")
        self.client = s3.client(settings)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, Key=self.key, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                raise _Answer(code) from None
            raise OSError(f"{code}: {exc} ({self.uri})") from None
        except BotoCoreError as exc:
            raise OSError(f"{type(exc).__name__}: {exc} ({self.uri})") from None

    def create(self, text: str) -> bool:
        try:
            self._call("put_object", Body=text.encode(), IfNoneMatch="*")
        except _Answer:
            return False
        return True

    def read(self) -> Optional[str]:
        return self.read_tagged()[0]

    def read_tagged(self) -> Tuple[Optional[str], str]:
        try:
            answer = self._call("get_object")
        except _Answer:
            return None, ""
        return answer["Body"].read().decode(), answer["ETag"]

    def take_over(self, tag: str, text: str) -> bool:
        """Replace the hold read with ETag ``tag`` by ``text``, unless another taker did first."""
        try:
            self._call("put_object", Body=text.encode(), IfMatch=tag)
        except _Answer:
            return False
        return True

    def overwrite(self, text: str) -> None:
        self._call("put_object", Body=text.encode())

    def delete(self) -> None:
        self._call("delete_object")


class _Answer(Exception):
    """An S3 answer that is not a failure: the object exists (or does not)."""


class OutputLock:
    """``with OutputLock(settings, run_id, mode):`` holds the output or raises UserError naming
    the run that holds it."""

    def __init__(self, settings: Settings, run_id: str, mode: str) -> None:
        self.uri = join_uri(settings.output_root, LOCK)
        self.store = _S3Store(self.uri, settings) if s3.is_s3(self.uri) else _LocalStore(self.uri)
        self.holder = Holder.me(run_id, mode)
        self._stop = threading.Event()
        self._refresher: Optional[threading.Thread] = None
        self.took_over: Optional[Holder] = None

    def _text(self, holder: Holder) -> str:
        return json.dumps(asdict(holder), indent=1)

    def acquire(self) -> None:
        mine = self._text(self.holder)
        for _ in range(3):
            if self.store.create(mine):
                return self._hold()
            text, tag = self.store.read_tagged()
            current = _parse(text)
            if text is not None and (current is None or not current.gone()):
                who = current.describe() if current else "an unknown run (the lock cannot be read)"
                raise UserError(
                    f"The output {self.uri.rsplit('/', 1)[0]} is held by {who}: one run at a time may write it. "
                    f"Wait for that run to end. If it is gone for good, delete {self.uri} and run again."
                )
            if text is not None and self.store.take_over(tag, mine):  # the stale hold, as read: one taker wins
                self.took_over = current
                return self._hold()
        raise UserError(f"Could not take the output lock {self.uri}: other runs keep taking it. Run again.")

    def _hold(self) -> None:
        self._refresher = threading.Thread(target=self._refresh, name="sparkify-lock", daemon=True)
        self._refresher.start()

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                current = _parse(self.store.read())
                if current is not None and current.run_id == self.holder.run_id:  # still ours
                    self.store.overwrite(self._text(Holder(**{**asdict(self.holder), "refreshed": _now()})))
            except Exception:  # a missed refresh only makes the hold look older
                pass

    def release(self) -> None:
        self._stop.set()
        current = _parse(self.store.read())
        if current is not None and current.run_id == self.holder.run_id:
            self.store.delete()

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
