"""Sparkify's daily run on AWS (Airflow 3, apache-airflow-providers-amazon): for each day ``{{ ds }}``,

1. the incremental run of that day's events: ``etl.py --since {{ ds }} --until {{ ds }}``;
2. the data-quality checks over the output: ``etl.py --checks-only`` (a failed check is the job's exit 1: the
   job run or step fails, and so does this task);
3. the analysts' queries: ``analyst.py --results OUTPUT/_reports/queries/{{ ds }}`` saves each query's result as
   NAME.csv there (a query that does not run fails the task);

on EMR Serverless (a job run) or on a running EMR cluster (a step), chosen by the Airflow Variable
``sparkify`` (JSON, see ``SETTINGS``): ``"runner": "serverless"`` or ``"cluster"``. The code is the one
``python -m sparkify.emr submit`` uploaded to ``code_uri`` (etl.py, analyst.py, sparkify.zip, dl.cfg, queries/).
No AWS key here: the operators use the Airflow connection ``aws_default`` (or ``aws_conn_id`` in the Variable).

Backfills: ``catchup`` is on from ``START``; ``airflow backfill create --dag-id sparkify_daily --from-date …
--to-date …`` runs past days. Retries with exponential backoff (a day's run is idempotent: it rewrites the
months it touches).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Tuple

from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator, EmrServerlessStartJobOperator
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk import DAG, TaskGroup, Variable, chain, task

DAG_ID = "sparkify_daily"
START = dt.datetime(2018, 11, 1, tzinfo=dt.timezone.utc)  # the first day of the logs
VARIABLE = "sparkify"
# The Variable's keys (JSON): runner, code_uri, input, output, and for serverless application_id and
# execution_role_arn (and python_packages: false when [EMR] PYTHON_PACKAGES = none), for a cluster cluster_id;
# aws_conn_id (default aws_default).
SETTINGS = "var.json." + VARIABLE
STEPS = ("etl", "checks", "queries")
DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(hours=1),
}


def setting(key: str, default: str = "") -> str:
    """A Jinja expression for a key of the Variable, rendered when the task runs (not when the DAG is parsed)."""
    return "{{ " + f"{SETTINGS}.get('{key}', '{default}')" + " }}"


def entry_point(step: str) -> str:
    return setting("code_uri") + ("/analyst.py" if step == "queries" else "/etl.py")


def arguments(step: str) -> List[str]:
    """The entry point's arguments for a step: the uploaded config, the roots, the step's own."""
    output = setting("output")
    if step == "queries":
        queries, results = setting("code_uri") + "/queries", output + "/_reports/queries/{{ ds }}"
        return ["--config", "dl.cfg", "--output", output, "--queries", queries, "--results", results]
    own = ["--since", "{{ ds }}", "--until", "{{ ds }}"] if step == "etl" else ["--checks-only"]
    return ["--config", "dl.cfg", "--input", setting("input"), "--output", output, *own]


def spark_submit_parameters() -> str:
    """The package and the config; and the Python packages' archive ``submit`` uploaded for the image's Python
    (unless the Variable says ``"python_packages": false``, for ``[EMR] PYTHON_PACKAGES = none``)."""
    code = setting("code_uri")
    packages = (
        f" --conf spark.archives={code}/python-packages.tar.gz#pydeps"
        " --conf spark.emr-serverless.driverEnv.PYTHONPATH=./pydeps --conf spark.executorEnv.PYTHONPATH=./pydeps"
    )
    shipped = "{% if " + SETTINGS + ".get('python_packages', true) %}" + packages + "{% endif %}"
    return f"--py-files {code}/sparkify.zip --files {code}/dl.cfg{shipped}"


def job_driver(step: str) -> Dict[str, Any]:
    """An EMR Serverless job run of a step (as ``sparkify.emr submit --serverless`` starts one)."""
    return {
        "sparkSubmit": {
            "entryPoint": entry_point(step),
            "entryPointArguments": arguments(step),
            "sparkSubmitParameters": spark_submit_parameters(),
        }
    }


def cluster_step(step: str) -> List[Dict[str, Any]]:
    """A spark-submit step on a running cluster (as ``sparkify.emr submit --cluster-id`` adds one)."""
    code = setting("code_uri")
    args = ["spark-submit", "--deploy-mode", "client", "--py-files", f"{code}/sparkify.zip"]
    args += ["--files", f"{code}/dl.cfg", entry_point(step), *arguments(step)]
    return [{"Name": f"Sparkify {step} {{{{ ds }}}}", "ActionOnFailure": "CONTINUE",
             "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args}}]  # fmt: skip


def job_run(step: str) -> EmrServerlessStartJobOperator:
    """A step as an EMR Serverless job run, waited for."""
    return EmrServerlessStartJobOperator(
        task_id=step,
        application_id=setting("application_id"),
        execution_role_arn=setting("execution_role_arn"),
        job_driver=job_driver(step),
        name=f"sparkify-{step}-{{{{ ds }}}}",
        aws_conn_id=setting("aws_conn_id", "aws_default"),
        wait_for_completion=True,
    )


def cluster_step_and_sensor(step: str) -> Tuple[EmrAddStepsOperator, EmrStepSensor]:
    """A step added to the running cluster, then watched to its end."""
    add = EmrAddStepsOperator(
        task_id=step,
        job_flow_id=setting("cluster_id"),
        steps=cluster_step(step),
        aws_conn_id=setting("aws_conn_id", "aws_default"),
    )
    watch = EmrStepSensor(
        task_id=f"{step}_done",
        job_flow_id=setting("cluster_id"),
        step_id="{{ " + f"ti.xcom_pull(task_ids='cluster.{step}')[0]" + " }}",
        aws_conn_id=setting("aws_conn_id", "aws_default"),
    )
    return add, watch


with DAG(
    DAG_ID,
    schedule="@daily",
    start_date=START,
    catchup=True,
    max_active_runs=1,  # one writer per output: the job's own lock would refuse a second one anyway
    default_args=DEFAULT_ARGS,
    tags=["sparkify"],
) as dag:

    @task.branch
    def choose_runner() -> str:
        """The first task of the runner the Variable names."""
        runner = Variable.get(VARIABLE, deserialize_json=True).get("runner", "serverless")
        if runner not in ("serverless", "cluster"):
            raise ValueError(f"Variable {VARIABLE}: runner = {runner!r}; set serverless or cluster")
        return "serverless.etl" if runner == "serverless" else "cluster.etl"

    with TaskGroup("serverless") as serverless:
        chain(*[job_run(step) for step in STEPS])

    with TaskGroup("cluster") as cluster:
        chain(*[task for step in STEPS for task in cluster_step_and_sensor(step)])

    choose_runner() >> [serverless, cluster]
