"""Class data sharing: the first local run that succeeds leaves an archive of the classes its JVM
loaded (sparkify.platform.conf.class_archive); a later run's JVM maps them from it instead of loading them."""

from __future__ import annotations

import os
import subprocess

import pytest

from sparkify.core.config import Settings
from sparkify.platform.conf import class_archive, java_feature_version, spark_conf
from tests.conftest import SAMPLE, read_table, start_etl

# What the JVM's class loading log says of a class it mapped from the run's archive (the top layer
# over the JDK's own) rather than loaded from a jar.
FROM_ARCHIVE = "source: shared objects file (top)"


def etl(tmp_path, name):
    """etl.py on the bundled sample (no checks, no catalog) with the JVM's class loading logged."""
    log = tmp_path / f"{name}.classes.log"
    options = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} -Xlog:class+load=info:file={log}".strip()
    config = tmp_path / "no-catalog.cfg"
    config.write_text("[CATALOG]\nTYPE = none\n")
    job = start_etl(
        "--config", str(config), "--input", SAMPLE, "--output", str(tmp_path / name), "--skip-checks",
        master="local[2]",
        env={"JAVA_TOOL_OPTIONS": options},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=False,
    )  # fmt: skip
    _, err = job.communicate(timeout=600)
    assert job.returncode == 0, err[-3000:]
    assert not os.path.exists(f"{class_archive()}.part-{job.pid}")  # a dump is moved into place as its run ends
    with open(log, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return sum(FROM_ARCHIVE in line for line in lines), len(lines)


@pytest.mark.slow
def test_a_run_after_the_first_maps_the_classes_the_first_archived(spark, tmp_path):
    assert java_feature_version() == 17
    mapped, loaded = etl(tmp_path, "first")
    assert os.path.getsize(class_archive()) > 10_000_000
    if not mapped:  # this run wrote the archive (no earlier run of this checkout had): the next one maps it
        mapped, loaded = etl(tmp_path, "second")
        assert read_table(spark, str(tmp_path / "second"), "songplays") == read_table(
            spark, str(tmp_path / "first"), "songplays"
        )
    print(f"\n{mapped:,} of {loaded:,} classes mapped from {class_archive()}")
    assert mapped > 5_000 and mapped > loaded / 2


def test_class_sharing_options(tmp_path, monkeypatch):
    from sparkify.platform import conf as session

    monkeypatch.setattr(session, "CDS_DIR", str(tmp_path / "cds"))
    monkeypatch.setattr(session, "class_archive", lambda: str(tmp_path / "cds" / "spark-x.jsa"))

    def options(master="local[2]", archive_classes=True, sharing=True):
        settings = Settings(input_root=SAMPLE, output_root=str(tmp_path / "out"), master=master, class_sharing=sharing)
        conf = spark_conf(settings, local=None, archive_classes=archive_classes)
        return conf["spark.driver.extraJavaOptions"].split()

    dump = f"-XX:ArchiveClassesAtExit={tmp_path}/cds/spark-x.jsa.part-{os.getpid()}"
    assert dump in options() and "-Xlog:cds*=off" in options()
    assert not any("ArchiveClassesAtExit" in o or "SharedArchive" in o for o in options(archive_classes=False))
    assert not any("cds" in o for o in options(sharing=False))
    assert not any("cds" in o for o in options(master="spark://127.0.0.1:7077"))  # the cluster's JVMs: as they are
    (tmp_path / "cds" / "spark-x.jsa").write_bytes(b"archive")
    (tmp_path / "cds" / "spark-x.jsa.part-999999999").write_bytes(b"left by a killed run")
    assert f"-XX:SharedArchiveFile={tmp_path}/cds/spark-x.jsa" in options(archive_classes=False)
    monkeypatch.setattr(session, "java_feature_version", lambda: 11)  # no -XX:ArchiveClassesAtExit before 13
    assert not any("cds" in o for o in options())
    (tmp_path / "cds" / "spark-x.jsa").unlink()
    monkeypatch.setattr(session, "java_feature_version", lambda: 17)
    assert dump in options()
    assert not (tmp_path / "cds" / "spark-x.jsa.part-999999999").exists()  # a dead run's dump is removed
