"""etl.py's command line: help, and errors that say what to do (no Spark needed for these)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def etl(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "etl.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_explains_every_option():
    out = etl("--help")
    assert out.returncode == 0
    for option in ("--config", "--input", "--output", "--master", "--verbose"):
        assert option in out.stdout


def test_missing_input_folder_is_one_clear_paragraph(tmp_path):
    out = etl("--input", str(tmp_path), "--output", str(tmp_path / "out"))
    assert out.returncode == 2
    assert f"Input folder {tmp_path}/song_data does not exist" in out.stderr
    assert "--input" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreadable_config_names_the_file(tmp_path):
    out = etl("--config", str(tmp_path / "missing.cfg"))
    assert out.returncode == 2
    assert f"Cannot read the config file {tmp_path}/missing.cfg" in out.stderr
    assert "Traceback" not in out.stderr
