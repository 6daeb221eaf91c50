import glob, os, shutil, sys, time
from pyspark.sql import SparkSession
root = "/tmp/spike41"
shutil.rmtree(root, ignore_errors=True); os.makedirs(root + "/_catalog")
jars = glob.glob("/work/main/.jars/iceberg/iceberg-spark-runtime*.jar") + ["/tmp/spike-jars/sqlite-jdbc-3.54.1.0.jar"]
def session(name="sparkify"):
    return (SparkSession.builder.master("local[2]").config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config(f"spark.sql.catalog.{name}", "org.apache.iceberg.spark.SparkCatalog")
        .config(f"spark.sql.catalog.{name}.type", "jdbc")
        .config(f"spark.sql.catalog.{name}.uri", f"jdbc:sqlite:{root}/_catalog/iceberg.sqlite")
        .config(f"spark.sql.catalog.{name}.warehouse", root)
        .config(f"spark.sql.catalog.{name}.cache-enabled", "false")
        .config("spark.sql.catalog.paths", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.paths.type", "hadoop")
        .config("spark.sql.catalog.paths.warehouse", root + "/old")
        .getOrCreate())
spark = session()
for stmt in ["CREATE TABLE sparkify.t (a int) USING iceberg LOCATION '/tmp/spike41/t'", "INSERT INTO sparkify.t VALUES (1)"]:
    try:
        spark.sql(stmt); print("OK", stmt)
    except Exception as e:
        print("FAIL", stmt, str(e).splitlines()[0])
for stmt in ["CREATE NAMESPACE IF NOT EXISTS sparkify.sparkify", "CREATE TABLE sparkify.sparkify.t2 (a int) USING iceberg LOCATION '/tmp/spike41/t2'", "INSERT INTO sparkify.sparkify.t2 VALUES (1),(2)"]:
    try:
        spark.sql(stmt); print("OK", stmt)
    except Exception as e:
        print("FAIL", stmt, str(e).splitlines()[0])
# migration: a hadoop path table registered
spark.sql("CREATE TABLE paths.u (a int) USING iceberg"); spark.sql("INSERT INTO paths.u VALUES (5)")
hint = open(root + "/old/u/metadata/version-hint.text").read().strip()
meta = f"{root}/old/u/metadata/v{hint}.metadata.json"
try:
    print(spark.sql(f"CALL sparkify.system.register_table(table => 'sparkify.sparkify.u', metadata_file => '{meta}')").collect())
    print(spark.sql("SELECT * FROM sparkify.sparkify.u").collect())
except Exception as e:
    print("FAIL register", str(e).splitlines()[0])
print(spark.sql("SELECT file FROM sparkify.sparkify.t2.metadata_log_entries").collect())
# concurrency: two sessions appending at once
import threading
s2 = spark.newSession()
errs = []
def app(s, v):
    try:
        for i in range(5):
            s.sql(f"INSERT INTO sparkify.sparkify.t2 VALUES ({v})")
    except Exception as e:
        errs.append(str(e).splitlines()[0])
ts = [threading.Thread(target=app, args=(s, v)) for s, v in ((spark, 10), (s2, 20))]
[t.start() for t in ts]; [t.join() for t in ts]
print("errors", errs, spark.sql("SELECT COUNT(*) FROM sparkify.sparkify.t2").first())
print(os.listdir(root + "/t2/metadata")[:5])
import datetime as dt
now = (dt.datetime.utcnow() + dt.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
try:
    print("orphans", spark.sql(f"CALL sparkify.system.remove_orphan_files(table => 'sparkify.sparkify.t2', older_than => TIMESTAMP '{now}', dry_run => true)").collect()[:3])
except Exception as e:
    print("orphan FAIL", str(e).splitlines()[0][:300])
try:
    print("expire", spark.sql(f"CALL sparkify.system.expire_snapshots(table => 'sparkify.sparkify.t2', older_than => TIMESTAMP '{now}', retain_last => 1)").collect())
except Exception as e:
    print("expire FAIL", str(e).splitlines()[0][:300])
