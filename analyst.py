"""Sparkify's analysts' queries against an output: diff with the expected results, or save them (--results).

python analyst.py --output output/                    # = python -m sparkify.analyst
spark-submit analyst.py --config dl.cfg --output s3://bucket/lake --queries s3://bucket/code/queries \
    --results s3://bucket/lake/_reports/queries/2018-11-30     # on EMR: the Airflow DAG's last step
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # spark-submit analyst.py: sparkify/ beside it

from sparkify.cli.analyst import main

if __name__ == "__main__":
    sys.exit(main())
