import glob, os, shutil, threading
from pyspark.sql import SparkSession
root = "/tmp/spike41c"; shutil.rmtree(root, ignore_errors=True); os.makedirs(root + "/_catalog")
jars = glob.glob("/work/main/.jars/iceberg/iceberg-spark-runtime*.jar") + ["/tmp/spike-jars/sqlite-jdbc-3.54.1.0.jar"]
spark = (SparkSession.builder.master("local[2]").config("spark.jars", ",".join(jars))
    .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
    .config("spark.sql.catalog.sparkify", "org.apache.iceberg.spark.SparkCatalog")
    .config("spark.sql.catalog.sparkify.type", "jdbc")
    .config("spark.sql.catalog.sparkify.uri", f"jdbc:sqlite:{root}/_catalog/iceberg.sqlite")
    .config("spark.sql.catalog.sparkify.warehouse", root)
    .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
    .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spark.sql(f"CREATE TABLE sparkify.p (m int, v int) USING iceberg PARTITIONED BY (m) LOCATION '{root}/p'")
spark.sql("INSERT INTO sparkify.p VALUES (1, 0), (2, 0)")
s2 = spark.newSession(); out = []
def ow(s, v):
    try:
        s.sql(f"INSERT OVERWRITE sparkify.p SELECT 1 AS m, {v} AS v FROM range(1000)")
        out.append(("ok", v))
    except Exception as e:
        out.append(("fail", v, type(e).__name__, str(e).splitlines()[0][:200]))
for attempt in range(3):
    out.clear()
    ts = [threading.Thread(target=ow, args=(x, v)) for x, v in ((spark, 10 + attempt), (s2, 20 + attempt))]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(attempt, out, spark.sql("SELECT m, v, COUNT(*) FROM sparkify.p GROUP BY m, v ORDER BY m").collect())
