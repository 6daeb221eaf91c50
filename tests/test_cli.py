"""etl.py's command line: help, and errors that say what to do (no Spark needed for these)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT, run_etl

pytestmark = pytest.mark.slow  # each test starts etl.py: a second of Python start-up, left out of `make test-fast`


def etl(*args):
    return run_etl(*args, timeout=120)


def test_help_explains_every_option():
    out = etl("--help")
    assert out.returncode == 0
    for option in ("--config", "--input", "--output", "--master", "--verbose"):
        assert option in out.stdout


def test_missing_input_folder_is_one_clear_paragraph(tmp_path):
    out = etl("--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert out.returncode == 2
    assert f"Input folder {tmp_path}/in/song_data does not exist" in out.stderr
    assert "--input" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreadable_config_names_the_file(tmp_path):
    out = etl("--config", str(tmp_path / "missing.cfg"))
    assert out.returncode == 2
    assert f"Cannot read the config file {tmp_path}/missing.cfg" in out.stderr
    assert "Traceback" not in out.stderr


def write_cfg(tmp_path, body):
    path = tmp_path / "dl.cfg"
    path.write_text(body)
    return str(path)


def test_a_key_without_its_secret_says_which_is_missing(tmp_path):
    cfg = write_cfg(tmp_path, "[ETL]\nINPUT_DATA = in\nOUTPUT_DATA = out\n[AWS]\nAWS_ACCESS_KEY_ID = AKIA123\n")
    out = etl("--config", cfg)
    assert out.returncode == 2
    assert "[AWS] AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is empty" in out.stderr


def test_a_missing_output_key_names_the_key_and_the_option(tmp_path):
    cfg = write_cfg(tmp_path, f"[ETL]\nINPUT_DATA = {ROOT}/data/sample\n")
    out = etl("--config", cfg)
    assert out.returncode == 2
    assert "No OUTPUT_DATA: set [ETL] OUTPUT_DATA in dl.cfg, or pass --output." in out.stderr


def test_an_output_that_is_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    out = etl("--output", str(blocker / "out"))
    assert out.returncode == 2
    assert f"The output {blocker}/out is not writable (Not a directory)" in out.stderr


def test_an_output_inside_the_input_is_refused(tmp_path):
    out = etl("--input", f"{ROOT}/data/sample", "--output", f"{ROOT}/data/sample/out")
    assert out.returncode == 2
    assert "is inside the input" in out.stderr
    assert not os.path.exists(f"{ROOT}/data/sample/out")


def test_a_bucket_root_output_needs_force():
    out = etl("--output", "s3://my-bucket/")
    assert out.returncode == 2
    assert "The output s3a://my-bucket/ is a bucket's root" in out.stderr
    assert "--force" in out.stderr


def test_modes_that_exclude_each_other_say_so_at_the_command_line():
    cases = {
        ("--stream", "--since", "2018-11-01"): "argument --since: not allowed with argument --stream",
        ("--checks-only", "--stream"): "argument --stream: not allowed with argument --checks-only",
        ("--checks-only", "--since", "2018-11-01"): "argument --since: not allowed with argument --checks-only",
        ("--until", "2018-11-30"): "--until goes with --since: give --since too.",
        ("--rebuild-songs",): "--rebuild-songs goes with --since: give --since too.",
        ("--available-now",): "--available-now goes with --stream: give --stream too.",
        ("--since", "2018-11-01", "--interval", "5"): "--interval goes with --stream: give --stream too.",
        ("--checks-only", "--skip-checks"): "--skip-checks and --checks-only exclude each other: choose one.",
    }
    for args, message in cases.items():
        out = etl(*args)
        assert out.returncode == 2, args
        assert message in out.stderr, (args, out.stderr)
