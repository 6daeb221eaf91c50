"""Platform: the Spark session and its settings, S3, files, the output lock, and the one module allowed private py4j."""
