"""python -m sparkify.replay: log_data/'s events into a Kafka topic (sparkify.cli.replay)."""

import sys

from sparkify.cli.replay import main

if __name__ == "__main__":
    sys.exit(main())
