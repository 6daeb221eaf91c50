"""What every catalog is told of the output: each table's shape (location, columns, partition keys,
partitions) and what registration did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple
from urllib.parse import unquote, urlparse

from sparkify.core.config import Settings
from sparkify.core.schemas import ICEBERG_SONGS_PARTITION_BY, TABLES, Table, songs_table_spec
from sparkify.platform.fs import join_uri


@dataclass(frozen=True)
class Shape:
    """What the catalog must say of one table: where it is, its columns, partition keys and
    partitions (each a tuple of values in partition-key order)."""

    name: str
    location: str
    columns: Tuple[Tuple[str, str], ...]
    partition_keys: Tuple[Tuple[str, str], ...]
    partitions: Tuple[Tuple[str, ...], ...] = ()
    table_format: str = "parquet"


@dataclass
class Registered:
    """What registration did, for the run report."""

    catalog: str
    database: str
    created: List[str] = field(default_factory=list)
    updated: List[str] = field(default_factory=list)
    unchanged: List[str] = field(default_factory=list)
    partitions_added: Dict[str, int] = field(default_factory=dict)
    partitions_removed: Dict[str, int] = field(default_factory=dict)
    # an Iceberg output in Iceberg's own catalog: each table's current metadata file (what a path reader opens)
    metadata_files: Dict[str, str] = field(default_factory=dict)


def relaid(have: Sequence[Any], want: Sequence[Any], have_keys: Sequence[Any], want_keys: Sequence[Any]) -> bool:
    """Whether a registered table holds the same columns as the one written, partitioned otherwise (the
    songs table in the other [ETL] SONGS_PARTITION_BY layout): its entry is then made anew."""
    return sorted(have) == sorted(want) and list(have_keys) != list(want_keys)


def shapes(settings: Settings, partitions: Dict[str, List[Tuple[str, ...]]]) -> List[Shape]:
    """The five tables of the output as the catalog must describe them. ``partitions``: per
    partitioned table, its partitions' values (from listing the written folders)."""
    found = []
    for table in tables_of(settings):
        keys = tuple((c, table.type_of(c)) for c in table.partition_by)  # Spark SQL's type names are Hive's
        columns = tuple((name, kind) for name, kind in table.columns if name not in table.partition_by)
        found.append(
            Shape(
                name=table.name,
                location=join_uri(settings.output_root, table.name),
                columns=columns,
                partition_keys=keys,
                partitions=tuple(sorted(partitions.get(table.name, ()))),
                table_format=settings.table_format,
            )
        )
    return found


def list_partitions(spark: Any, output_root: str, table: Table) -> List[Tuple[str, ...]]:
    """The partitions of a written table, as value tuples in partition-key order, from the
    paths of its files (one listing, as Spark's own file index makes it)."""
    depth = len(table.partition_by)
    root = join_uri(output_root, table.name).rstrip("/")
    if depth == 0:
        return []
    found = set()
    for path in spark.read.schema(table.ddl).parquet(root).inputFiles():
        folders = urlparse(path).path.split("/")[-1 - depth : -1]
        if all("=" in f for f in folders):
            found.add(tuple(unquote(f.split("=", 1)[1]) for f in folders))
    return sorted(found)


def tables_of(settings: Settings) -> List[Table]:
    """The five tables in the output's layout (an Iceberg songs table is by year only)."""
    songs_by = ICEBERG_SONGS_PARTITION_BY if settings.table_format == "iceberg" else settings.songs_partition_by
    return [songs_table_spec(songs_by) if t.name == "songs" else t for t in TABLES]
