"""python -m sparkify.report OUTPUT: the report pages rebuilt from the JSON reports (sparkify.cli.report)."""

import sys

from sparkify.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
