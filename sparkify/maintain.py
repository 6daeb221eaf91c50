"""python -m sparkify.maintain: an Iceberg output's maintenance (sparkify.cli.maintain)."""

import sys

from sparkify.cli.maintain import main

if __name__ == "__main__":
    sys.exit(main())
