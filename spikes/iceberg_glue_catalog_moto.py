"""GlueCatalog against moto's server (glue.endpoint), local warehouse through HadoopFileIO: create, commit,
two sessions committing at once, the Glue entry's parameters."""
import glob, os, shutil, socket, subprocess, sys, threading, time
import boto3
from pyspark.sql import SparkSession
root = "/tmp/spike41b"
shutil.rmtree(root, ignore_errors=True); os.makedirs(root)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
moto = subprocess.Popen(["/work/main/.venv/bin/moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
ep = f"http://127.0.0.1:{port}"
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
jars = glob.glob("/work/main/.jars/iceberg/*.jar")
try:
    spark = (SparkSession.builder.master("local[2]").config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.sql.catalog.sparkify", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.sparkify.type", "glue")
        .config("spark.sql.catalog.sparkify.glue.endpoint", ep)
        .config("spark.sql.catalog.sparkify.client.region", "us-east-1")
        .config("spark.sql.catalog.sparkify.io-impl", "org.apache.iceberg.hadoop.HadoopFileIO")
        .config("spark.sql.catalog.sparkify.warehouse", root)
        .config("spark.sql.catalog.sparkify.cache-enabled", "false")
        .getOrCreate())
    for stmt in ["CREATE NAMESPACE IF NOT EXISTS sparkify.sparkify",
                 f"CREATE TABLE sparkify.sparkify.t (a int) USING iceberg LOCATION '{root}/t'",
                 "INSERT INTO sparkify.sparkify.t VALUES (1)"]:
        try:
            spark.sql(stmt); print("OK", stmt)
        except Exception as e:
            print("FAIL", stmt, str(e).splitlines()[0]); raise
    glue = boto3.client("glue", endpoint_url=ep)
    t = glue.get_table(DatabaseName="sparkify", Name="t")["Table"]
    print("glue params", t["Parameters"], t.get("VersionId"))
    s2 = spark.newSession(); errs = []
    def app(sess, v):
        try:
            for i in range(5):
                sess.sql(f"INSERT INTO sparkify.sparkify.t VALUES ({v})")
        except Exception as e:
            errs.append(str(e).splitlines()[0])
    ts = [threading.Thread(target=app, args=(x, v)) for x, v in ((spark, 10), (s2, 20))]
    [x.start() for x in ts]; [x.join() for x in ts]
    print("errors", errs, spark.sql("SELECT COUNT(*) FROM sparkify.sparkify.t").first())
    print("snapshots", spark.sql("SELECT COUNT(*) FROM sparkify.sparkify.t.snapshots").first())
    t = glue.get_table(DatabaseName="sparkify", Name="t")["Table"]
    print("glue metadata_location", t["Parameters"].get("metadata_location"), t["Parameters"].get("table_type"))
    print(spark.sql("SELECT file FROM sparkify.sparkify.t.metadata_log_entries ORDER BY timestamp DESC LIMIT 1").first())
    try:
        print(spark.sql("CALL sparkify.system.remove_orphan_files(table => 'sparkify.t', older_than => TIMESTAMP '2099-01-01 00:00:00', dry_run => true)").collect()[:3])
    except Exception as e:
        print("orphan", str(e).splitlines()[0])
finally:
    moto.kill()
