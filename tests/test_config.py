"""dl.cfg parsing: paths, defaults, environment fallbacks, and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from sparkify.config import load_settings
from sparkify.errors import UserError


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


def test_songs_layout_is_one_of_two(tmp_path):
    assert load_settings(write(tmp_path, "[ETL]\nSONGS_PARTITION_BY = year\n"), env={}).songs_partition_by == ("year",)
    assert load_settings(env={}).songs_partition_by == ("year", "artist_id")
    with pytest.raises(UserError, match=r"SONGS_PARTITION_BY = 'artist_id'.*`year, artist_id`.*`year`"):
        load_settings(write(tmp_path, "[ETL]\nSONGS_PARTITION_BY = artist_id\n"), env={})


def test_s3a_jars_join_the_class_path_only_for_s3_roots():
    from sparkify.config import Settings
    from sparkify.session import local_jars, spark_conf

    if not local_jars():
        pytest.skip("S3A jars absent: `make jars` (make test does it)")
    local = spark_conf(Settings(input_root="/data/in", output_root="/data/out"))
    remote = spark_conf(Settings(input_root="/data/in", output_root="s3a://bucket/lake"))
    assert "spark.jars" not in local
    assert "hadoop-aws" in remote["spark.jars"] and "aws-java-sdk-bundle" in remote["spark.jars"]
    assert "hadoop-aws" in spark_conf(Settings(input_root="/a", output_root="/b"), with_s3=True)["spark.jars"]
