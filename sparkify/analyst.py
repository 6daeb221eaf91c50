"""python -m sparkify.analyst: the analysts' queries against an output (sparkify.cli.analyst)."""

import sys

from sparkify.cli.analyst import main

if __name__ == "__main__":
    sys.exit(main())
