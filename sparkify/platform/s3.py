"""S3 access for the job: URI schemes per platform, and credentials set where they don't show.

- On EMR, ``s3://`` is EMRFS (with the S3-optimized committer): s3a:// and s3n:// URIs are mapped
  to s3://. Elsewhere s3:// and s3n:// are mapped to s3a:// (Hadoop's S3A connector).
- Keys from dl.cfg (or AWS_* variables) go into the session's Hadoop configuration at run time,
  not into SparkConf, so they are not listed in Spark's environment page or logged with it.
  Without keys, S3A's default chain applies (environment, then the instance profile).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Dict, Iterator, Tuple
from urllib.parse import quote, urlparse
from xml.etree import ElementTree

from pyspark.sql import SparkSession

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.platform.jvm import hadoop_conf, jvm

EMR_MARKERS = ("/usr/share/aws/emr/emrfs", "/emr/instance-controller")
S3_SCHEMES = ("s3", "s3a", "s3n")


def on_emr() -> bool:
    return any(os.path.exists(marker) for marker in EMR_MARKERS)


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def normalize_uri(uri: str, emr: bool) -> str:
    """s3://, s3a:// and s3n:// all name the same object; use the scheme the platform serves."""
    scheme = urlparse(uri).scheme
    if scheme not in S3_SCHEMES:
        return uri
    wanted = "s3" if emr else "s3a"
    return wanted + uri[len(scheme) :]


def configure(spark: SparkSession, settings: Settings) -> None:
    """Point S3A at the endpoint and credentials of the settings (no-op on EMR's EMRFS)."""
    conf = hadoop_conf(spark)
    if settings.s3_endpoint:
        conf.set("fs.s3a.endpoint", settings.s3_endpoint)
        conf.set("fs.s3a.connection.ssl.enabled", str(settings.s3_endpoint.startswith("https")).lower())
    if settings.s3_path_style:
        conf.set("fs.s3a.path.style.access", "true")
    # Keep directory markers: by default (delete) S3A looks for and deletes the parent folders' markers
    # after each file it writes, a request or more per object (Hadoop 3.3's `keep`: readers of Hadoop
    # 3.2.2 and later, EMRFS, Athena and DuckDB all ignore such markers).
    conf.set("fs.s3a.directory.marker.retention", "keep")
    # Fail fast on a wrong endpoint or key instead of retrying for minutes.
    conf.set("fs.s3a.attempts.maximum", "3")
    conf.set("fs.s3a.retry.limit", "3")
    conf.set("fs.s3a.connection.establish.timeout", "5000")
    aws = settings.aws
    if aws.given:
        provider = "TemporaryAWSCredentialsProvider" if aws.session_token else "SimpleAWSCredentialsProvider"
        conf.set("fs.s3a.aws.credentials.provider", f"org.apache.hadoop.fs.s3a.{provider}")
        conf.set("fs.s3a.access.key", aws.access_key_id)
        conf.set("fs.s3a.secret.key", aws.secret_access_key)
        if aws.session_token:
            conf.set("fs.s3a.session.token", aws.session_token)
    if urlparse(settings.output_root).scheme == "s3a":
        use_s3a_committers(spark)


def give_sdk_credentials(spark: SparkSession, settings: Settings, catalog_prefix: str) -> None:
    """dl.cfg's [AWS] keys for Iceberg's own AWS clients (AWS SDK v2: its GlueCatalog, S3FileIO, a REST catalog's
    SigV4 signer), which never read S3A's: the catalog's ``s3.*`` and ``rest.*`` properties (S3FileIO's travel with
    it to every executor), and the driver JVM's ``aws.*`` system properties, the first source of the SDK's default
    chain, for the Glue client (Iceberg's takes no keys of its own). Before the catalog's first use, which creates
    the clients. Without keys in dl.cfg the default chain answers (environment, instance role)."""
    aws = settings.aws
    if not aws.given:
        return
    keys = (("access-key-id", "accessKeyId", aws.access_key_id), ("secret-access-key", "secretAccessKey",
            aws.secret_access_key), ("session-token", "sessionToken", aws.session_token))  # fmt: skip
    system = jvm(spark).java.lang.System
    for key, system_key, value in keys:
        if value:
            system.setProperty(f"aws.{system_key}", value)
            spark.conf.set(f"{catalog_prefix}.s3.{key}", value)
            spark.conf.set(f"{catalog_prefix}.rest.{key}", value)


# Writes to s3a:// go through S3A's committers, bound by spark-hadoop-cloud: each file is a
# multipart upload completed at job commit, never a file under _temporary/ renamed at commit
# (on S3 a copy and a delete per object: 356 s of 432 s on the public data's songs table).
# The staging committers buffer a task's files on local disk and upload them at task commit
# (3 requests per object: initiate, part, complete); their conflict mode "replace" removes what
# the output held only at job commit, so the previous table stays readable while a run writes.
# EMR's s3:// (EMRFS) has its own S3-optimized committer and is left alone.
S3A_COMMIT_SQL = {
    "spark.sql.sources.commitProtocolClass": "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol",
    "spark.sql.parquet.output.committer.class": "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter",
}
S3A_COMMIT_HADOOP = {
    "mapreduce.outputcommitter.factory.scheme.s3a": "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory",
    "fs.s3a.committer.name": "directory",
    "fs.s3a.committer.staging.conflict-mode": "replace",
    "fs.s3a.committer.staging.unique-filenames": "true",
    # Threads that upload a task's files at task commit and complete them at job commit (Hadoop's
    # default: 8): the classic songs layout is ~12,600 one-row objects, each a few requests.
    "fs.s3a.committer.threads": "32",
}


def committer_options(path: str, replace_partitions: bool) -> Dict[str, str]:
    """Per-write options of a write to ``path``: on s3a://, the S3A committer that replaces the
    whole table ("directory") or only the partitions written ("partitioned"); else none."""
    if urlparse(path).scheme != "s3a":
        return {}
    return {
        "fs.s3a.committer.name": "partitioned" if replace_partitions else "directory",
        "fs.s3a.committer.staging.conflict-mode": "replace",
    }


def use_s3a_committers(spark: SparkSession) -> None:
    """Bind Spark's file writes to S3A's committers (needs spark-hadoop-cloud: `make jars`)."""
    for key, value in S3A_COMMIT_SQL.items():
        spark.conf.set(key, value)
    conf = hadoop_conf(spark)
    for key, value in S3A_COMMIT_HADOOP.items():
        conf.set(key, value)


def _aws_client(service: str, settings: Settings, **extra: Any) -> Any:
    """A boto3 client in the [EMR] region with the job's credentials (the default AWS chain:
    environment, instance role, when dl.cfg has no keys)."""
    import boto3  # noqa: PLC0415 (boto3 and urllib3: 0.6 s to import, which a local run never needs)

    aws = settings.aws
    return boto3.client(
        service,
        region_name=settings.emr.region,
        aws_access_key_id=aws.access_key_id or None,
        aws_secret_access_key=aws.secret_access_key or None,
        aws_session_token=aws.session_token or None,
        **extra,
    )


def client(settings: Settings, max_connections: int = 10) -> Any:
    """An S3 client at the job's endpoint, for what S3A cannot do: conditional PUTs, many small
    GETs at once."""
    from botocore.config import Config  # noqa: PLC0415 (boto3 and urllib3: 0.6 s to import, which a local run never needs)

    return _aws_client(
        "s3",
        settings,
        endpoint_url=settings.s3_endpoint or None,
        config=Config(
            s3={"addressing_style": "path" if settings.s3_path_style else "auto"},
            max_pool_connections=max_connections,
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
        ),
    )


PRESIGN_SECONDS = 7 * 24 * 3600  # the longest SigV4 allows


def presigned_url(settings: Settings, uri: str) -> str:
    """A URL that GETs the object ``uri`` (s3:// or s3a://) for 7 days without credentials."""
    parsed = urlparse(uri)
    params = {"Bucket": parsed.netloc, "Key": parsed.path.lstrip("/")}
    return str(client(settings).generate_presigned_url("get_object", Params=params, ExpiresIn=PRESIGN_SECONDS))


S3_XML = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class SignedS3:
    """LIST and GET in one bucket, as cheaply per request as Python allows: each request signed by botocore's
    own SigV4 signer, with the credentials of the job (botocore's chain, instance role included, when there
    are none), and sent on a pool of kept-alive connections by urllib3, botocore's HTTP library, without the
    rest of a boto3 call (its events, parsing and validation: about 2 ms of CPU per small object, and 3.5 s to
    parse a 15,000-key listing; bench/small_reads.py). Connection failures and 5xx answers are retried 3 times."""

    def __init__(self, settings: Settings, bucket: str, connections: int = 10) -> None:
        import botocore.session  # noqa: PLC0415 (boto3 and urllib3: 0.6 s to import, which a local run never needs)
        import urllib3  # noqa: PLC0415
        from botocore.credentials import Credentials  # noqa: PLC0415

        aws = settings.aws
        if aws.given:
            credentials = Credentials(aws.access_key_id, aws.secret_access_key, aws.session_token or None)
        else:
            credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise UserError(f"No AWS credentials to read s3://{bucket}: set [AWS] keys, the AWS_* variables or a role.")
        self.bucket, self.credentials, self.region = bucket, credentials, settings.emr.region
        endpoint = urlparse(settings.s3_endpoint)
        if not settings.s3_endpoint:
            found = client(settings).get_bucket_location(Bucket=bucket).get("LocationConstraint")
            self.region = found or "us-east-1"
            self.base = f"https://{bucket}.s3.{self.region}.amazonaws.com"
        elif settings.s3_path_style:
            self.base = f"{settings.s3_endpoint.rstrip('/')}/{bucket}"
        else:
            self.base = f"{endpoint.scheme}://{bucket}.{endpoint.netloc}"
        retries = urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504))
        timeout = urllib3.Timeout(connect=5, read=60)
        self.pool = urllib3.PoolManager(maxsize=connections, retries=retries, timeout=timeout)

    def _request(self, url: str, what: str) -> bytes:
        import urllib3  # noqa: PLC0415 (see __init__)
        from botocore.auth import S3SigV4Auth  # noqa: PLC0415
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        request = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(self.credentials.get_frozen_credentials(), "s3", self.region).add_auth(request)
        try:
            answer = self.pool.request("GET", url, headers=dict(request.headers.items()))
        except urllib3.exceptions.HTTPError as exc:
            raise UserError(f"Cannot read {what}: {exc}. Check [S3] ENDPOINT and the network.") from None
        if answer.status != 200:
            code = re.search(rb"<Code>([^<]*)</Code>", answer.data)
            reason = code.group(1).decode("utf-8", "replace") if code else answer.reason
            raise UserError(
                f"Cannot read {what}: S3 answered HTTP {answer.status} {reason}. Check that the credentials "
                "([AWS] keys, AWS_* variables or the instance role) may s3:ListBucket and s3:GetObject there."
            )
        return answer.data

    def get(self, key: str) -> bytes:
        """One object's bytes."""
        return self._request(f"{self.base}/{quote(key)}", f"s3://{self.bucket}/{key}")

    def list(self, prefix: str) -> Iterator[Tuple[str, int, float]]:
        """(key, size, modification time as epoch seconds) of every object under ``prefix``, 1,000 a LIST."""
        token = ""
        while True:
            query = f"list-type=2&prefix={quote(prefix, safe='')}"
            if token:
                query += f"&continuation-token={quote(token, safe='')}"
            page = ElementTree.fromstring(self._request(f"{self.base}/?{query}", f"s3://{self.bucket}/{prefix}"))
            for item in page.iter(f"{S3_XML}Contents"):
                modified = item.findtext(f"{S3_XML}LastModified", "").replace("Z", "+00:00")
                key, size = item.findtext(f"{S3_XML}Key", ""), int(item.findtext(f"{S3_XML}Size", "0"))
                yield key, size, datetime.fromisoformat(modified).timestamp() if modified else 0.0
            token = page.findtext(f"{S3_XML}NextContinuationToken", "")
            if page.findtext(f"{S3_XML}IsTruncated", "false") != "true" or not token:
                return


def glue_client(settings: Settings) -> Any:
    """A Glue client (the Data Catalog of the [EMR] region, at [CATALOG] GLUE_ENDPOINT when given)."""
    return _aws_client("glue", settings, endpoint_url=settings.catalog_glue_endpoint or None)
