"""File-system helpers that work for local folders and s3a:// alike, through Hadoop's API."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Set
from urllib.parse import urlparse

from pyspark.sql import SparkSession


def join_uri(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/")] + [p.strip("/") for p in parts])


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def local_path(uri: str) -> str:
    return urlparse(uri).path if uri.startswith("file:") else uri


def _hadoop_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def path_exists(spark: SparkSession, uri: str) -> bool:
    if is_local(uri):
        return os.path.exists(local_path(uri))
    path, fs = _hadoop_path(spark, uri)
    return bool(fs.exists(path))


@dataclass(frozen=True)
class FileListing:
    files: int
    bytes: int
    partitions: int


def list_data_files(spark: SparkSession, uri: str, partition_depth: int) -> FileListing:
    """Count the data files (not _SUCCESS or hidden files) and partition folders under ``uri``."""
    entries: List[tuple] = []
    if is_local(uri):
        base = local_path(uri)
        for folder, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
            rel = os.path.relpath(folder, base)
            for name in names:
                if not name.startswith(("_", ".")):
                    entries.append((rel, os.path.getsize(os.path.join(folder, name))))
    else:
        path, fs = _hadoop_path(spark, uri)
        base = path.toUri().getPath().rstrip("/")
        it = fs.listFiles(path, True)
        while it.hasNext():
            status = it.next()
            file_path = status.getPath().toUri().getPath()
            rel = os.path.relpath(os.path.dirname(file_path), base)
            name = os.path.basename(file_path)
            hidden_folder = rel != "." and any(p.startswith(("_", ".")) for p in rel.split("/"))
            if not name.startswith(("_", ".")) and not hidden_folder:
                entries.append((rel, status.getLen()))
    partitions: Set[str] = (
        {rel for rel, _ in entries if rel.count("=") == partition_depth} if partition_depth else set()
    )
    return FileListing(files=len(entries), bytes=sum(size for _, size in entries), partitions=len(partitions))


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write one small text file (a run report) to a local path or through Hadoop (S3)."""
    if is_local(uri):
        path = local_path(uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    path, fs = _hadoop_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def count_input(spark: SparkSession, uri: str) -> FileListing:
    """Files and bytes of an input folder (any depth)."""
    return list_data_files(spark, uri, 0)
