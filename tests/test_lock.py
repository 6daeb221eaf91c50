"""One writer per output: a second run on a held output stops at once and names the holder; a
hold left by a run that is gone is taken over. Local (O_EXCL) and S3 (conditional PUT)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess

import pytest

from sparkify.core.config import AwsCredentials
from sparkify.core.errors import UserError
from sparkify.platform import lock
from sparkify.platform.lock import LOCK, OutputLock
from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.runs import engine
from tests import s3server


def test_a_second_run_on_a_held_output_stops_at_once_naming_the_holder(spark, settings, tmp_path):
    out = str(tmp_path / "out")
    held = settings.with_overrides(output_root=out)
    with OutputLock(held, "20261201T000000Z-abcd", "full"):
        with pytest.raises(UserError) as refused:
            engine.run(spark, held, checks=DEFAULT_CHECKS)
        assert not os.path.exists(os.path.join(out, "songplays"))  # nothing written, not even read
    message = str(refused.value)
    assert f"The output {out} is held by run 20261201T000000Z-abcd (full) on host {socket.gethostname()}, " in message
    assert f"pid {os.getpid()}, since " in message and f"delete {out}/{LOCK}" in message
    assert not os.path.exists(os.path.join(out, LOCK))  # released by its holder


def write_hold(path, **changes):
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    body = dict(run_id="old-run", mode="full", host=socket.gethostname(), pid=1, since=now, refreshed=now)
    body.update(changes)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(body, handle)


@pytest.mark.slow
def test_the_hold_of_a_killed_run_is_taken_over(spark, settings, tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    out = tmp_path / "out"
    write_hold(str(out / LOCK), pid=gone.pid, process_start="1")
    result = engine.run(spark, settings.with_overrides(output_root=str(out)))
    assert result.status == "ok"
    assert not (out / LOCK).exists()


@pytest.mark.parametrize(("minutes_ago", "taken"), [(60, True), (1, False)])
def test_a_hold_from_another_host_is_stale_once_not_refreshed(settings, tmp_path, minutes_ago, taken):
    refreshed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)
    write_hold(str(tmp_path / LOCK), host="emr-master-1", pid=4242, refreshed=refreshed.isoformat())
    hold = OutputLock(settings.with_overrides(output_root=str(tmp_path)), "new-run", "incremental")
    if taken:
        with hold:
            assert json.loads((tmp_path / LOCK).read_text())["run_id"] == "new-run"
        assert hold.took_over.host == "emr-master-1"
    else:
        with pytest.raises(UserError, match="held by run old-run \\(full\\) on host emr-master-1, pid 4242"):
            hold.acquire()


def on_server(settings, endpoint, bucket):
    """``settings`` with the output s3a://<bucket>/lake on the tests' S3 server (the bucket made)."""
    s3server.client(endpoint).create_bucket(Bucket=bucket)
    return settings.with_overrides(
        output_root=f"s3a://{bucket}/lake",
        s3_endpoint=endpoint,
        s3_path_style=True,
        aws=AwsCredentials(s3server.ACCESS_KEY, s3server.SECRET_KEY),
    )


def test_on_s3_a_conditional_put_lets_one_run_hold_the_output(settings, endpoint):
    client = s3server.client(endpoint)
    on_s3 = on_server(settings, endpoint, "locks")
    with OutputLock(on_s3, "first-run", "full"):
        holder = json.loads(client.get_object(Bucket="locks", Key=f"lake/{LOCK}")["Body"].read())
        assert (holder["run_id"], holder["pid"]) == ("first-run", os.getpid())
        with pytest.raises(UserError, match="s3a://locks/lake is held by run first-run \\(full\\)"):
            OutputLock(on_s3, "second-run", "stream").acquire()
    assert "Contents" not in client.list_objects_v2(Bucket="locks", Prefix=f"lake/{LOCK}")
    with OutputLock(on_s3, "second-run", "stream"):
        pass


def test_refresh_keeps_a_long_run_fresh(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "REFRESH_SECONDS", 0.05)
    with OutputLock(settings.with_overrides(output_root=str(tmp_path)), "long-run", "stream") as hold:
        first = json.loads((tmp_path / LOCK).read_text())["refreshed"]
        hold._stop.wait(1.2)
        assert json.loads((tmp_path / LOCK).read_text())["refreshed"] > first


def _take(settings, run_id, start, done, results):
    """One taker: wait for the others, try the lock, then hold what it won until every taker has tried."""
    start.wait()
    try:
        OutputLock(settings, run_id, "full").acquire()
        results.put(run_id)
    except UserError:
        results.put("")
    done.wait()


def race(settings, stale, takers=4, trials=10):
    """``trials`` times: ``stale()`` leaves a stale hold, ``takers`` processes take it at once; the winners."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    winners = []
    for trial in range(trials):
        stale()
        start, done, results = context.Barrier(takers), context.Barrier(takers), context.Queue()
        names = [f"taker-{trial}-{n}" for n in range(takers)]
        procs = [context.Process(target=_take, args=(settings, n, start, done, results)) for n in names]
        for proc in procs:
            proc.start()
        won = [w for w in (results.get(timeout=60) for _ in procs) if w]
        for proc in procs:
            proc.join(60)
        winners.append(won)
    return winners


def test_takers_of_one_stale_local_hold_at_once_leave_exactly_one_holder(settings, tmp_path):
    out = tmp_path / "out"
    local = settings.with_overrides(output_root=str(out))
    gone = subprocess.Popen(["true"])
    gone.wait()
    winners = race(local, lambda: write_hold(str(out / LOCK), pid=gone.pid, process_start="1"))
    assert [len(w) for w in winners] == [1] * len(winners), winners


def test_takers_of_one_stale_hold_on_s3_at_once_leave_exactly_one_holder(settings, endpoint):
    client = s3server.client(endpoint)
    on_s3 = on_server(settings, endpoint, "races")
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat(timespec="seconds")

    def stale():
        body = dict(run_id="old-run", mode="full", host="emr-master-1", pid=1, since=old, refreshed=old)
        client.put_object(Bucket="races", Key=f"lake/{LOCK}", Body=json.dumps(body).encode())

    winners = race(on_s3, stale)
    assert [len(w) for w in winners] == [1] * len(winners), winners
