"""python -m sparkify.emr submit: the job on an EMR cluster or EMR Serverless (sparkify.cli.emr)."""

import sys

from sparkify.cli.emr import main

if __name__ == "__main__":
    sys.exit(main())
