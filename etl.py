"""Sparkify ETL: song and event JSON -> star schema in partitioned Parquet.

python etl.py                         # the bundled sample -> ./output
python etl.py --input s3a://bucket/raw --output s3a://bucket/lake
spark-submit etl.py --config dl.cfg   # on an EMR master node
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # spark-submit etl.py: sparkify/ beside it

from sparkify.cli.etl import main

if __name__ == "__main__":
    sys.exit(main())
