"""The daily DAG (dags/sparkify_daily.py) in Airflow 3: it imports, its tasks and their order, and one day's run
against moto's EMR Serverless (a server on 127.0.0.1, stopped by its pid) starts the three job runs with that day's
arguments, then the analysts' queries. Runs in the DAG's own virtualenv (`make test-airflow`), never in the job's."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time

import pytest

DAGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLE = "arn:aws:iam::123456789012:role/sparkify-emr-serverless"
SECRET = "moto-secret-never-in-a-request"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """A metadata database of its own (SQLite), the DAG folder as Airflow's."""
    home = tmp_path_factory.mktemp("airflow-home")
    os.environ.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=DAGS)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    done = subprocess.run([airflow, "db", "migrate"], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return home


@pytest.fixture(scope="module")
def moto_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait(10)


def test_the_dag_imports_with_its_tasks_in_order(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(DAGS)
    assert bag.import_errors == {}
    dag = bag.get_dag("sparkify_daily")
    downstream = {t.task_id: sorted(d.task_id for d in t.downstream_list) for t in dag.tasks}
    assert downstream == {
        "choose_runner": ["cluster.etl", "serverless.etl"],
        "serverless.etl": ["serverless.checks"],
        "serverless.checks": ["serverless.queries"],
        "serverless.queries": [],
        "cluster.etl": ["cluster.etl_done"],
        "cluster.etl_done": ["cluster.checks"],
        "cluster.checks": ["cluster.checks_done"],
        "cluster.checks_done": ["cluster.queries"],
        "cluster.queries": ["cluster.queries_done"],
        "cluster.queries_done": [],
    }
    assert dag.catchup and dag.start_date == dt.datetime(2018, 11, 1, tzinfo=dt.timezone.utc)
    assert all(t.retries == 3 and t.retry_exponential_backoff for t in dag.tasks)


def test_one_day_on_emr_serverless_starts_that_days_run_the_checks_and_the_queries(airflow_home, moto_endpoint):
    import boto3

    client = boto3.client(
        "emr-serverless", region_name="us-east-1", endpoint_url=moto_endpoint,
        aws_access_key_id="testing", aws_secret_access_key=SECRET,
    )  # fmt: skip
    app = client.create_application(name="sparkify-etl", type="SPARK", releaseLabel="emr-7.5.0")["applicationId"]
    connection = {"region_name": "us-east-1", "endpoint_url": moto_endpoint}
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {"conn_type": "aws", "login": "testing", "password": SECRET, "extra": connection}
    )
    os.environ["AIRFLOW_VAR_SPARKIFY"] = json.dumps(
        {"runner": "serverless", "application_id": app, "execution_role_arn": ROLE,
         "code_uri": "s3://code/sparkify", "input": "s3://raw", "output": "s3://lake"}
    )  # fmt: skip
    sys.path.insert(0, DAGS)
    import sparkify_daily

    run = sparkify_daily.dag.test(logical_date=dt.datetime(2018, 11, 29, tzinfo=dt.timezone.utc))

    assert run.state == "success"
    runs = [client.get_job_run(applicationId=app, jobRunId=r["id"])["jobRun"] for r in
            client.list_job_runs(applicationId=app)["jobRuns"]]  # fmt: skip
    by_name = {r["name"]: r for r in runs}
    assert sorted(by_name) == ["sparkify-checks-2018-11-29", "sparkify-etl-2018-11-29", "sparkify-queries-2018-11-29"]
    common = ["--config", "dl.cfg", "--input", "s3://raw", "--output", "s3://lake"]
    submit = (
        "--py-files s3://code/sparkify/sparkify.zip --files s3://code/sparkify/dl.cfg"
        " --conf spark.archives=s3://code/sparkify/python-packages.tar.gz#pydeps"
        " --conf spark.emr-serverless.driverEnv.PYTHONPATH=./pydeps --conf spark.executorEnv.PYTHONPATH=./pydeps"
    )
    for name, arguments in (("etl", ["--since", "2018-11-29", "--until", "2018-11-29"]), ("checks", ["--checks-only"])):
        driver = by_name[f"sparkify-{name}-2018-11-29"]["jobDriver"]["sparkSubmit"]
        assert driver == {
            "entryPoint": "s3://code/sparkify/etl.py",
            "entryPointArguments": common + arguments,
            "sparkSubmitParameters": submit,
        }
        assert by_name[f"sparkify-{name}-2018-11-29"]["executionRole"] == ROLE
    assert by_name["sparkify-queries-2018-11-29"]["jobDriver"]["sparkSubmit"] == {
        "entryPoint": "s3://code/sparkify/analyst.py",
        "entryPointArguments": ["--config", "dl.cfg", "--output", "s3://lake", "--queries", "s3://code/sparkify/queries",
                                "--results", "s3://lake/_reports/queries/2018-11-29"],
        "sparkSubmitParameters": submit,
    }  # fmt: skip
    assert SECRET not in json.dumps(runs, default=str)


def test_on_a_running_cluster_each_step_is_that_days_spark_submit(airflow_home):
    """The cluster runner's steps as Airflow renders them for a day (moto's EMR steps stay RUNNING: its step
    sensor would never see them end, so this one is rendered rather than run)."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(DAGS).get_dag("sparkify_daily")
    settings = {"runner": "cluster", "cluster_id": "j-1", "code_uri": "s3://code/sparkify", "input": "s3://raw",
                "output": "s3://lake", "aws_conn_id": "aws_sparkify"}  # fmt: skip
    context = {"ds": "2018-11-30", "var": {"json": {"sparkify": settings}}}
    rendered = {}
    for step in ("etl", "checks", "queries"):
        task = dag.get_task(f"cluster.{step}").prepare_for_execution()
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        assert (task.job_flow_id, task.aws_conn_id) == ("j-1", "aws_sparkify")
        (rendered[step],) = task.steps
    code = "s3://code/sparkify"
    assert rendered["etl"] == {
        "Name": "Sparkify etl 2018-11-30",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": [
            "spark-submit", "--deploy-mode", "client", "--py-files", f"{code}/sparkify.zip", "--files",
            f"{code}/dl.cfg", f"{code}/etl.py", "--config", "dl.cfg", "--input", "s3://raw", "--output", "s3://lake",
            "--since", "2018-11-30", "--until", "2018-11-30",
        ]},
    }  # fmt: skip
    assert rendered["checks"]["HadoopJarStep"]["Args"][-7:] == [
        "--config", "dl.cfg", "--input", "s3://raw", "--output", "s3://lake", "--checks-only",
    ]  # fmt: skip
    assert rendered["queries"]["HadoopJarStep"]["Args"][-11:] == [
        "--files", f"{code}/dl.cfg", f"{code}/analyst.py", "--config", "dl.cfg", "--output", "s3://lake",
        "--queries", f"{code}/queries", "--results", "s3://lake/_reports/queries/2018-11-30",
    ]  # fmt: skip


def test_without_python_packages_the_job_runs_ship_no_archive(airflow_home):
    """``"python_packages": false`` (for ``[EMR] PYTHON_PACKAGES = none``): no spark.archives in the job run."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(DAGS).get_dag("sparkify_daily")
    settings = {"runner": "serverless", "application_id": "00f1", "execution_role_arn": ROLE,
                "code_uri": "s3://code/sparkify", "input": "s3://raw", "output": "s3://lake"}  # fmt: skip
    for shipped, expected in ((False, ""), (True, " --conf spark.archives=s3://code/sparkify/python-packages")):
        context = {"ds": "2018-11-30", "var": {"json": {"sparkify": {**settings, "python_packages": shipped}}}}
        task = dag.get_task("serverless.checks").prepare_for_execution()
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        parameters = task.job_driver["sparkSubmit"]["sparkSubmitParameters"]
        prefix = "--py-files s3://code/sparkify/sparkify.zip --files s3://code/sparkify/dl.cfg"
        assert parameters.startswith(prefix + expected) and ("spark.archives" in parameters) == shipped
