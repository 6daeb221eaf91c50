"""python -m sparkify.catalog sql: one SQL statement over a local output's catalog (sparkify.cli.catalog)."""

import sys

from sparkify.cli.catalog import main

if __name__ == "__main__":
    sys.exit(main())
