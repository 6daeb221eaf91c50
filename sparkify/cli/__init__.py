"""Entry points: each command's options and exit code (etl.py; python -m sparkify.emr, analyst, maintain, replay,
catalog, report)."""

from __future__ import annotations

import functools
import sys
from typing import Callable, List, Optional

from sparkify.core.errors import UserError

Main = Callable[[Optional[List[str]]], int]


def user_errors_exit_2(command: Main) -> Main:
    """A command's ``main``: a UserError it raises is one ``error:`` line on stderr and exit code 2."""

    @functools.wraps(command)
    def main(argv: Optional[List[str]] = None) -> int:
        try:
            return command(argv)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return main
