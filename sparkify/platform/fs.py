"""File-system helpers that work for local folders and s3a:// alike, through Hadoop's API."""

from __future__ import annotations

import ctypes
import os
import shutil
from dataclasses import dataclass
from typing import List, Optional, Set, Tuple, Union
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from sparkify.core.schemas import INPUT_SUFFIXES
from sparkify.platform.jvm import hadoop_path, jvm


def join_uri(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/")] + [p.strip("/") for p in parts])


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def local_path(uri: str) -> str:
    return urlparse(uri).path if uri.startswith("file:") else uri


def path_exists(spark: SparkSession, uri: str) -> bool:
    if is_local(uri):
        return os.path.exists(local_path(uri))
    path, fs = hadoop_path(spark, uri)
    return bool(fs.exists(path))


def _subfolders(spark: SparkSession, uri: str) -> List[str]:
    """The names of the folders directly in ``uri`` (none when it does not exist)."""
    return _names(spark, uri, folders=True)


def file_names(spark: SparkSession, uri: str) -> List[str]:
    """The names of the files directly in ``uri`` (none when it does not exist)."""
    return _names(spark, uri, folders=False)


def _names(spark: SparkSession, uri: str, folders: bool) -> List[str]:
    if is_local(uri):
        try:
            return sorted(e.name for e in os.scandir(local_path(uri)) if e.is_dir() == folders)
        except OSError:
            return []
    path, fs = hadoop_path(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(path) if status.isDirectory() == folders)


def partition_keys_found(spark: SparkSession, uri: str) -> Tuple[str, ...]:
    """The partition columns of the Hive-style table at ``uri``, read from its folder names down its
    first partition folder (``year=1999/artist_id=AR1/``: year, artist_id); () when it has none."""
    keys: List[str] = []
    while True:
        found = [name for name in _subfolders(spark, uri) if "=" in name and not name.startswith(("_", "."))]
        if not found:
            return tuple(keys)
        keys.append(found[0].split("=", 1)[0])
        uri = join_uri(uri, found[0])


@dataclass(frozen=True)
class FileListing:
    files: int
    bytes: int
    partitions: int
    ignored: int = 0  # files not ending with the suffix asked for
    newest: float = 0.0  # latest modification time of those files (epoch seconds)


# A file as a listing sees it: (folder relative to the listed root, name, size, modification time).
FileEntry = Tuple[str, str, int, float]


def local_entries(base: str) -> List[FileEntry]:
    """(folder relative to ``base``, "." for itself; name, size, modification time) of the files below a
    local folder, hidden ones (and those in hidden folders: names starting with "_" or ".") left out.
    Folders linked to are not entered (as ``os.walk``). One ``scandir`` per folder, each file's own
    ``stat`` and relative folders built from names: `public`'s song_data/ (14,897 files) in 0.24-0.30 s,
    against 0.55-0.65 s with ``os.walk``, ``os.path.relpath`` and ``os.stat`` of joined paths."""
    entries: List[FileEntry] = []
    pending = [(".", base)]
    while pending:
        rel, folder = pending.pop()
        try:
            found = os.scandir(folder)
        except OSError:  # a folder missing or unreadable is skipped, as os.walk skips it
            continue
        with found:
            for entry in found:
                if entry.name.startswith(("_", ".")):
                    continue
                if entry.is_dir():
                    if not entry.is_symlink():
                        pending.append((entry.name if rel == "." else f"{rel}/{entry.name}", entry.path))
                    continue
                info = entry.stat()
                entries.append((rel, entry.name, info.st_size, info.st_mtime))
    return entries


def partition_folders(entries: List[FileEntry], depth: int) -> Set[str]:
    """The partition folders (relative, e.g. 'year=2018/month=11') that hold a table's files, of its
    entries (``local_entries`` or a Hadoop listing)."""
    return {rel for rel, _, _, _ in entries if rel.count("=") == depth}


def listing_of(
    entries: List[FileEntry], partition_depth: int = 0, suffix: Union[str, Tuple[str, ...]] = ""
) -> FileListing:
    """What ``list_data_files`` counts of (folder, name, size, modification time) entries, as
    ``local_entries`` gives them (or a Hadoop listing)."""
    kept = [entry for entry in entries if entry[1].endswith(suffix)]
    return FileListing(
        files=len(kept),
        bytes=sum(size for _, _, size, _ in kept),
        partitions=len(partition_folders(kept, partition_depth)) if partition_depth else 0,
        ignored=len(entries) - len(kept),
        newest=max((modified for _, _, _, modified in kept), default=0.0),
    )


def list_data_files(
    spark: SparkSession, uri: str, partition_depth: int, suffix: Union[str, Tuple[str, ...]] = ""
) -> FileListing:
    """Count the data files (not _SUCCESS or hidden files) and partition folders under ``uri``."""
    if is_local(uri):
        return listing_of(local_entries(local_path(uri)), partition_depth, suffix)
    entries: List[FileEntry] = []
    path, fs = hadoop_path(spark, uri)
    base = path.toUri().getPath().rstrip("/")
    it = fs.listFiles(path, True)
    while it.hasNext():
        status = it.next()
        file_path = status.getPath().toUri().getPath()
        rel = os.path.relpath(os.path.dirname(file_path), base)
        name = os.path.basename(file_path)
        hidden_folder = rel != "." and any(p.startswith(("_", ".")) for p in rel.split("/"))
        if not name.startswith(("_", ".")) and not hidden_folder:
            entries.append((rel, name, status.getLen(), status.getModificationTime() / 1000))
    return listing_of(entries, partition_depth, suffix)


def file_status(spark: SparkSession, uri: str) -> Optional[Tuple[int, float]]:
    """(size, modification time) of one file, or None when it does not exist."""
    if is_local(uri):
        try:
            info = os.stat(local_path(uri))
        except OSError:
            return None
        return info.st_size, info.st_mtime
    path, fs = hadoop_path(spark, uri)
    if not fs.exists(path):
        return None
    status = fs.getFileStatus(path)
    return status.getLen(), status.getModificationTime() / 1000


def read_text(spark: SparkSession, uri: str) -> Optional[str]:
    """A small text file's content, or None when it does not exist."""
    if is_local(uri):
        try:
            with open(local_path(uri), encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return None
    path, fs = hadoop_path(spark, uri)
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        io = jvm(spark).java.io
        reader = io.BufferedReader(io.InputStreamReader(stream, "UTF-8"))
        return "\n".join(iter(reader.readLine, None))
    finally:
        stream.close()


def delete_file(spark: SparkSession, uri: str) -> None:
    """Remove one file, local or through Hadoop (none there: nothing to do)."""
    if is_local(uri):
        try:
            os.remove(local_path(uri))
        except FileNotFoundError:
            pass
        return
    path, fs = hadoop_path(spark, uri)
    fs.delete(path, False)


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write one small text file (a run report) to a local path or through Hadoop (S3)."""
    if is_local(uri):
        path = local_path(uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    path, fs = hadoop_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def count_input(spark: SparkSession, uri: str) -> FileListing:
    """*.json(.gz) files and bytes of an input folder (any depth), and how many other files it holds."""
    return list_data_files(spark, uri, 0, suffix=INPUT_SUFFIXES)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange_dirs(a: str, b: str) -> bool:
    """Atomically swap two local folders (Linux renameat2 RENAME_EXCHANGE). False where the
    system lacks it; the caller then falls back to two renames."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    done = renameat2(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE) == 0
    return bool(done)


def swap_in(staged: str, live: str, trash: str) -> None:
    """Make the local folder ``staged`` the table at ``live``. Readers see the old table or the
    new one, never a mix: an atomic exchange where the system has one, else two renames
    (a crash between them leaves the old table in ``trash``, restored by ``recover``)."""
    if not os.path.exists(live):
        os.rename(staged, live)
        return
    if exchange_dirs(staged, live):
        shutil.rmtree(staged, ignore_errors=True)  # now holds the old table
        return
    os.makedirs(os.path.dirname(trash), exist_ok=True)
    os.rename(live, trash)
    os.rename(staged, live)
    shutil.rmtree(trash, ignore_errors=True)


def recover(output_root: str, staging: str, trash: str) -> None:
    """After a killed run: put back any table whose old copy sits in the trash, and drop
    half-written staging folders. Local output only."""
    if os.path.isdir(trash):
        for name in os.listdir(trash):
            live = os.path.join(output_root, name)
            if not os.path.exists(live):
                os.rename(os.path.join(trash, name), live)
        shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def carry_over_partitions(live: str, staged: str, depth: int) -> List[str]:
    """Hard-link into ``staged`` every partition folder of ``live`` that this run did not write
    (dynamic partition overwrite, local). Returns the partitions carried over."""
    carried = []
    if not os.path.isdir(live):
        return carried
    for folder, dirs, names in os.walk(live):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        rel = os.path.relpath(folder, live)
        if rel.count("=") != depth or os.path.exists(os.path.join(staged, rel)):
            continue
        os.makedirs(os.path.join(staged, rel))
        for name in names:
            if not name.startswith(("_", ".")):
                try:
                    os.link(os.path.join(folder, name), os.path.join(staged, rel, name))
                except OSError:
                    shutil.copy2(os.path.join(folder, name), os.path.join(staged, rel, name))
        carried.append(rel)
    return carried
