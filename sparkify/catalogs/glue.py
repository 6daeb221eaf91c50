"""The AWS Glue Data Catalog, through the Glue API (boto3), for a Parquet output: only what differs is written, so
a rerun makes no change and an incremental run adds only its new partitions. An Iceberg output's Glue entries are
Iceberg's own (its GlueCatalog, sparkify.platform.conf.iceberg_catalog_conf): none is written here."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from sparkify.catalogs.base import Registered, Shape, relaid
from sparkify.core.errors import UserError

PARQUET_FORMAT = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


class GlueCatalog:
    """The AWS Glue Data Catalog through the Glue API."""

    def __init__(self, client: Any, database: str) -> None:
        self.client, self.database = client, database

    def _s3(self, location: str) -> str:
        parsed = urlparse(location)
        return f"s3://{parsed.netloc}{parsed.path}" if parsed.scheme in ("s3a", "s3n") else location

    def _table_input(self, shape: Shape) -> Dict[str, Any]:
        storage: Dict[str, Any] = {
            "Columns": [{"Name": n, "Type": t} for n, t in shape.columns],
            "Location": self._s3(shape.location),
        }
        storage.update(PARQUET_FORMAT)
        return {
            "Name": shape.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in shape.partition_keys],
            "StorageDescriptor": storage,
        }

    def _fail(self, what: str, exc: Exception) -> UserError:
        return UserError(
            f"Could not register {what} in the Glue Data Catalog ({exc}). The tables are written; check the "
            "role's glue:GetDatabase/CreateDatabase/GetTable/CreateTable/UpdateTable/GetPartitions/"
            "BatchCreatePartition/BatchDeletePartition permissions, then run again (or set [CATALOG] TYPE = none)."
        )

    def register(self, tables: Sequence[Shape]) -> Registered:
        done = Registered("glue", self.database)
        try:
            try:
                self.client.get_database(Name=self.database)
            except self.client.exceptions.EntityNotFoundException:
                self.client.create_database(
                    DatabaseInput={"Name": self.database, "Description": "Sparkify star schema (sparkify-etl)"}
                )
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"the database {self.database}", exc) from None
        for shape in tables:
            try:
                self._register_table(shape, done)
            except (BotoCoreError, ClientError) as exc:
                raise self._fail(f"{self.database}.{shape.name}", exc) from None
        return done

    def _register_table(self, shape: Shape, done: Registered) -> None:
        wanted = self._table_input(shape)
        try:
            current = self.client.get_table(DatabaseName=self.database, Name=shape.name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            current = None
        if current is None:
            self.client.create_table(DatabaseName=self.database, TableInput=wanted)
            done.created.append(shape.name)
        elif self._relaid(current, wanted):  # the other songs layout: a new entry (its old partitions go with it)
            self.client.delete_table(DatabaseName=self.database, Name=shape.name)
            self.client.create_table(DatabaseName=self.database, TableInput=wanted)
            done.updated.append(shape.name)
        else:
            self._check_schema(shape.name, current, wanted)
            same_place = current.get("StorageDescriptor", {}).get("Location") == wanted["StorageDescriptor"]["Location"]
            same_params = all(current.get("Parameters", {}).get(k) == v for k, v in wanted["Parameters"].items())
            if same_place and same_params:
                done.unchanged.append(shape.name)
            else:
                self.client.update_table(DatabaseName=self.database, TableInput=wanted)
                done.updated.append(shape.name)
        if shape.partition_keys:
            self._sync_partitions(shape, wanted, done)

    @staticmethod
    def _columns(table: Dict[str, Any]) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
        """A table input's (or a Glue table's) columns and partition keys, as (name, type) pairs."""
        columns = [(c["Name"], c["Type"]) for c in table.get("StorageDescriptor", {}).get("Columns", [])]
        return columns, [(k["Name"], k["Type"]) for k in table.get("PartitionKeys", [])]

    def _relaid(self, current: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
        (have_cols, have_keys), (want_cols, want_keys) = self._columns(current), self._columns(wanted)
        return relaid(have_cols + have_keys, want_cols + want_keys, have_keys, want_keys)

    def _check_schema(self, name: str, current: Dict[str, Any], wanted: Dict[str, Any]) -> None:
        (have_cols, have_keys), (want_cols, want_keys) = self._columns(current), self._columns(wanted)
        if (have_cols, have_keys) != (want_cols, want_keys):
            raise UserError(
                f"The Glue table {self.database}.{name} exists with another schema (columns {have_cols}, "
                f"partition keys {have_keys}; this job writes {want_cols}, {want_keys}). The tables are written. "
                f"Drop that table if it is an old one of this job, or set [CATALOG] DATABASE to another database."
            )

    def _sync_partitions(self, shape: Shape, wanted: Dict[str, Any], done: Registered) -> None:
        have = set()
        for page in self.client.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=shape.name
        ):
            have |= {tuple(p["Values"]) for p in page["Partitions"]}
        want = set(shape.partitions)
        keys = [n for n, _ in shape.partition_keys]
        new = sorted(want - have)
        for start in range(0, len(new), 100):
            inputs = []
            for values in new[start : start + 100]:
                storage = dict(wanted["StorageDescriptor"])
                folder = "/".join(f"{k}={v}" for k, v in zip(keys, values))
                storage["Location"] = f"{storage['Location'].rstrip('/')}/{folder}"
                inputs.append({"Values": list(values), "StorageDescriptor": storage})
            answer = self.client.batch_create_partition(
                DatabaseName=self.database, TableName=shape.name, PartitionInputList=inputs
            )
            if answer.get("Errors"):
                raise UserError(
                    f"Glue refused partitions of {self.database}.{shape.name}: {answer['Errors'][0]}. "
                    "The tables are written; run again."
                )
        gone = sorted(have - want)
        for start in range(0, len(gone), 25):
            self.client.batch_delete_partition(
                DatabaseName=self.database,
                TableName=shape.name,
                PartitionsToDelete=[{"Values": list(v)} for v in gone[start : start + 25]],
            )
        if new:
            done.partitions_added[shape.name] = len(new)
        if gone:
            done.partitions_removed[shape.name] = len(gone)
