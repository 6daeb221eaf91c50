"""dl.cfg parsing: paths, defaults, environment fallbacks, and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from sparkify.core.config import load_settings
from sparkify.core.errors import UserError


def write(tmp_path, text):
    path = tmp_path / "dl.cfg"
    path.write_text(text)
    return str(path)


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    settings = load_settings(write(tmp_path, "[ETL]\nINPUT_DATA = in\nOUTPUT_DATA = s3a://bucket/lake\n"), env={})
    assert settings.input_root == str(tmp_path / "in")
    assert settings.output_root == "s3a://bucket/lake"
    assert settings.duration_tolerance == 2.0


def test_shipped_config_runs_the_bundled_sample():
    settings = load_settings(env={})
    assert settings.input_root.endswith("data/sample")
    assert not settings.aws.given


def test_keys_fall_back_to_the_environment_and_never_show(tmp_path):
    settings = load_settings(
        write(tmp_path, "[AWS]\nAWS_ACCESS_KEY_ID =\n"),
        env={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"},
    )
    assert settings.aws.given
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings)


def test_a_bad_number_names_section_key_and_value(tmp_path):
    with pytest.raises(UserError, match=r"\[ETL\] DURATION_TOLERANCE_SECONDS = 'two'"):
        load_settings(write(tmp_path, "[ETL]\nDURATION_TOLERANCE_SECONDS = two\n"), env={})


def test_songs_layout_is_one_of_two_by_year_by_default(tmp_path):
    classic = write(tmp_path, "[ETL]\nSONGS_PARTITION_BY = year, artist_id\n")
    assert load_settings(classic, env={}).songs_partition_by == ("year", "artist_id")
    assert load_settings(write(tmp_path, "[ETL]\nOUTPUT_DATA = o\n"), env={}).songs_partition_by == ("year",)
    assert load_settings(env={}).songs_partition_by == ("year",)  # the shipped dl.cfg
    with pytest.raises(UserError, match=r"SONGS_PARTITION_BY = 'artist_id'.*`year` \(the default\).*`year, artist_id`"):
        load_settings(write(tmp_path, "[ETL]\nSONGS_PARTITION_BY = artist_id\n"), env={})


def test_s3a_jars_join_the_class_path_only_for_s3_roots():
    from sparkify.core.config import Settings
    from sparkify.platform.conf import local_jars, spark_conf

    if not local_jars():
        pytest.skip("S3A jars absent: `make jars` (make test does it)")
    local = spark_conf(Settings(input_root="/data/in", output_root="/data/out"))
    remote = spark_conf(Settings(input_root="/data/in", output_root="s3a://bucket/lake"))
    assert "spark.jars" not in local
    assert "hadoop-aws-3.3.4.jar" in remote["spark.jars"] and "aws-java-sdk-bundle-1.12.262.jar" in remote["spark.jars"]
    assert "spark-hadoop-cloud_2.12-3.5" in remote["spark.jars"]
    assert "sparkify-localfs.jar" not in remote["spark.jars"]
    assert "hadoop-aws" in spark_conf(Settings(input_root="/a", output_root="/b"), with_s3=True)["spark.jars"]


LOCAL_RUN_ONLY = ("spark.ui.enabled", "spark.driver.memory", "spark.driver.extraClassPath", "spark.hadoop.fs.file.impl")


@pytest.fixture
def fast_local_fs(tmp_path, monkeypatch):
    """A sparkify-localfs.jar that exists, whether or not `make jars` built one here."""
    from sparkify.platform import conf as session

    jar = tmp_path / "sparkify-localfs.jar"
    jar.write_bytes(b"")
    monkeypatch.setattr(session, "FAST_LOCAL_FS_JAR", str(jar))
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    return str(jar)


@pytest.mark.parametrize("master", ["", "local", "local[2]", "local[*]", "local[4,2]"])
def test_a_local_run_gets_the_local_settings(fast_local_fs, master):
    from sparkify.core.config import Settings
    from sparkify.platform.conf import runs_locally, spark_conf

    settings = Settings(input_root="/in", output_root="/out", master=master, driver_memory="5g")
    conf = spark_conf(settings)
    assert runs_locally(settings)
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.driver.memory"] == "5g"
    assert conf["spark.driver.extraClassPath"] == fast_local_fs
    assert conf["spark.hadoop.fs.file.impl"] == "sparkify.FastLocalFileSystem"
    assert "log4j2.configurationFile" in conf["spark.driver.extraJavaOptions"]
    assert conf.get("spark.master", "") == master


@pytest.mark.parametrize("master", ["spark://127.0.0.1:7077", "yarn", "local-cluster[2,1,1024]", "k8s://https://h"])
def test_a_cluster_master_keeps_the_clusters_settings(fast_local_fs, master):
    """python etl.py --master spark://...: executors are other JVMs, without the fast local FS class."""
    from sparkify.core.config import Settings
    from sparkify.platform.conf import runs_locally, spark_conf

    settings = Settings(input_root="/in", output_root="/out", master=master)
    conf = spark_conf(settings)
    assert not runs_locally(settings)
    assert [key for key in LOCAL_RUN_ONLY if key in conf] == []
    assert conf["spark.master"] == master
    assert "log4j2.configurationFile" in conf["spark.driver.extraJavaOptions"]  # this process starts the driver
    assert conf["spark.sql.session.timeZone"] == "UTC"


@pytest.mark.parametrize("master", ["", "local[2]"])
def test_under_spark_submit_the_job_sets_no_local_run_setting(fast_local_fs, monkeypatch, master):
    """spark-submit (EMR's steps) started the JVM: the live UI stays, its driver memory and class path too."""
    from sparkify.core.config import Settings
    from sparkify.platform.conf import runs_locally, spark_conf, under_spark_submit

    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40123")  # what spark-submit hands the Python driver
    settings = Settings(input_root="/in", output_root="s3a://bucket/lake", master=master)
    conf = spark_conf(settings)
    assert under_spark_submit() and not runs_locally(settings)
    assert [key for key in LOCAL_RUN_ONLY if key in conf] == []
    assert "spark.driver.extraJavaOptions" not in conf  # the driver's JVM runs already
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.shuffle.partitions"] == str(settings.shuffle_partitions)


def test_the_local_settings_can_be_forced_either_way(fast_local_fs):
    from sparkify.core.config import Settings
    from sparkify.platform.conf import spark_conf

    settings = Settings(input_root="/in", output_root="/out", master="local[2]")
    assert [key for key in LOCAL_RUN_ONLY if key in spark_conf(settings, local=False)] == []
    cluster = Settings(input_root="/in", output_root="/out", master="spark://h:7077")
    assert spark_conf(cluster, local=True)["spark.ui.enabled"] == "false"


def test_a_local_run_on_small_logs_compiles_with_c1_only(tmp_path, monkeypatch):
    from sparkify.core.config import Settings
    from sparkify.platform import conf as session

    logs = tmp_path / "in" / "log_data" / "2018" / "11"
    logs.mkdir(parents=True)
    (logs / "day.json").write_bytes(b"{}\n" * 1000)  # 3,000 bytes

    def driver_options(jit="auto", master="local[2]", input_root=str(tmp_path / "in")):
        settings = Settings(input_root=input_root, output_root=str(tmp_path / "out"), master=master, jit=jit)
        return session.spark_conf(settings)["spark.driver.extraJavaOptions"].split()

    assert "-XX:TieredStopAtLevel=1" in driver_options()
    assert "-XX:TieredStopAtLevel=1" in driver_options(input_root="file://" + str(tmp_path / "in"))
    assert "-XX:TieredStopAtLevel=1" not in driver_options(jit="tiered")
    assert "-XX:TieredStopAtLevel=1" not in driver_options(master="spark://127.0.0.1:7077")  # executors elsewhere
    assert "-XX:TieredStopAtLevel=1" not in driver_options(input_root="s3a://bucket/raw")
    monkeypatch.setattr(session, "QUICK_JIT_MAX_LOG_BYTES", 2_999)
    assert "-XX:TieredStopAtLevel=1" not in driver_options()  # more log bytes than that: the JVM's default
    assert "-XX:TieredStopAtLevel=1" in driver_options(jit="c1")
    assert load_settings(write(tmp_path, "[SPARK]\nJIT = Tiered\n"), env={}).jit == "tiered"
    with pytest.raises(UserError, match=r"\[SPARK\] JIT = 'c2' is not a choice. Set auto, c1 or tiered"):
        load_settings(write(tmp_path, "[SPARK]\nJIT = c2\n"), env={})


def test_a_local_run_on_logs_up_to_a_sixth_of_the_heap_caches_uncompressed(tmp_path):
    """In-memory caches uncompressed where the logs are at most a sixth of the driver's heap; compressed
    (Spark's default, the key unset) above that, with a heap size it cannot read, on S3 and on a cluster."""
    from sparkify.core.config import Settings
    from sparkify.platform import conf as session

    logs = tmp_path / "in" / "log_data"
    logs.mkdir(parents=True)
    (logs / "day.json").write_bytes(b"{}\n" * 1000)  # 3,000 bytes
    key = "spark.sql.inMemoryColumnarStorage.compressed"

    def compressed(master="local[2]", input_root=str(tmp_path / "in"), driver_memory="3g"):
        settings = Settings(
            input_root=input_root, output_root=str(tmp_path / "out"), master=master, driver_memory=driver_memory
        )
        return session.spark_conf(settings).get(key, "default")

    assert compressed() == "false"
    assert compressed(input_root="s3a://bucket/raw") == "default"
    assert compressed(master="spark://127.0.0.1:7077") == "default"  # executors elsewhere
    assert compressed(input_root=str(tmp_path / "nothing")) == "default"  # no log_data/: a Kafka stream
    assert compressed(driver_memory="18k") == "false"  # 18,432 / 6 = 3,072 bytes >= 3,000
    assert compressed(driver_memory="17k") == "default"  # 17,408 / 6 = 2,901 bytes < 3,000
    assert compressed(driver_memory="lots") == "default"
    assert session.jvm_size_bytes("3g") // session.UNCOMPRESSED_CACHE_HEAP_SHARE == 512 * 2**20
    assert [session.jvm_size_bytes(v) for v in ("3072m", "2048", "512K", "1gb", "3.5g")] == [
        3 * 2**30,
        2 * 2**30,
        512 * 2**10,
        2**30,
        None,
    ]


ICEBERG_S3 = (
    "[ETL]\nINPUT_DATA = s3://raw/in\nOUTPUT_DATA = s3a://lake-bucket/lake\nTABLE_FORMAT = iceberg\n"
    "[S3]\nENDPOINT = http://127.0.0.1:9000\nPATH_STYLE_ACCESS = true\n[EMR]\nREGION = eu-west-1\n"
)


def test_catalog_type_glue_makes_icebergs_glue_catalog_with_s3fileio(tmp_path):
    from sparkify.platform.conf import iceberg_conf, spark_conf

    glue = "[CATALOG]\nTYPE = glue\nGLUE_ENDPOINT = http://127.0.0.1:5000\nDATABASE = star\n"
    settings = load_settings(write(tmp_path, ICEBERG_S3 + glue), env={})
    conf = {k.replace("spark.sql.catalog.sparkify.", ""): v for k, v in iceberg_conf(settings).items()}
    assert {k: conf[k] for k in ("type", "warehouse", "default-namespace", "client.region", "glue.endpoint")} == {
        "type": "glue",
        "warehouse": "s3a://lake-bucket/lake",
        "default-namespace": "star",
        "client.region": "eu-west-1",
        "glue.endpoint": "http://127.0.0.1:5000",
    }
    assert conf["io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert (conf["s3.endpoint"], conf["s3.path-style-access"]) == ("http://127.0.0.1:9000", "true")
    local_glue = settings.with_overrides(output_root=str(tmp_path / "out"), input_root=str(tmp_path))
    conf = iceberg_conf(local_glue)
    assert conf["spark.sql.catalog.sparkify.io-impl"] == "org.apache.iceberg.hadoop.HadoopFileIO"
    jars = spark_conf(local_glue, local=True).get("spark.jars", "")
    assert "iceberg-aws-bundle" in jars  # Glue's client, for a local output too (`make jars` fetched it)


def test_catalog_uri_makes_a_signed_rest_catalog_and_the_local_type_a_jdbc_one(tmp_path):
    from sparkify.platform.conf import ICEBERG_OUTPUT, iceberg_catalog_kind, iceberg_conf

    rest = "[CATALOG]\nTYPE = local\nURI = https://catalog.example/iceberg\nWAREHOUSE = arn:tables/b\n"
    rest += "SIGNING_NAME = s3tables\n"
    settings = load_settings(write(tmp_path, ICEBERG_S3 + rest), env={})
    conf = {k.replace("spark.sql.catalog.sparkify.", ""): v for k, v in iceberg_conf(settings).items()}
    assert (conf["type"], conf["uri"], conf["warehouse"], conf["default-namespace"]) == (
        "rest", "https://catalog.example/iceberg", "arn:tables/b", "sparkify"
    )  # fmt: skip
    assert (conf["rest.sigv4-enabled"], conf["rest.signing-name"], conf["rest.signing-region"]) == (
        "true", "s3tables", "eu-west-1"
    )  # fmt: skip
    assert conf[ICEBERG_OUTPUT] == "s3a://lake-bucket/lake"  # the output is told apart from the REST warehouse
    plain = settings.with_overrides(catalog_uri="")
    assert iceberg_catalog_kind(plain) == "hadoop"  # an S3 output without a catalog: path tables
    assert iceberg_catalog_kind(plain.with_overrides(output_root=str(tmp_path))) == "jdbc"
    assert iceberg_catalog_kind(plain.with_overrides(catalog_type="none", output_root=str(tmp_path))) == "hadoop"


def test_an_error_from_the_jvm_is_named_by_its_java_exception():
    from sparkify.core.errors import first_line

    class Py4JJavaError(Exception):
        pass

    raised = Py4JJavaError(
        "An error occurred while calling o91.sql.\n: org.apache.iceberg.exceptions.BadRequestException: Malformed "
        "request: table location must be within bucket lakehouse\n\tat org.apache.iceberg.rest.ErrorHandlers"
    )
    assert first_line(raised) == (
        "org.apache.iceberg.exceptions.BadRequestException: Malformed request: table location must be within bucket "
        "lakehouse"
    )
    assert first_line(ValueError("plain\nsecond")) == "plain"
