"""`adagg job upgrade [--check]`: move the running job to new SQL without losing its state.

The running job's compiled plan (kept by `submit`) is compared with the new SQL's
(adagg/compiled_plan.py). --check stops there. An upgrade then stops the job with a savepoint and
starts the new plan, renumbered to the old operator ids, from it. If the new job does not come up,
the old plan is started again from the same savepoint: nothing is lost either way, because the
stop committed every output and offset up to the savepoint and nothing after it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from adagg import flink, paths
from adagg.compiled_plan import carry_over, explain
from adagg.env import load
from adagg.sql import SQL_DIR, render
from adagg.stack import StackError

REFUSED = 2  # the exit status of a refused upgrade (and of a --check that finds it incompatible)


def streaming_job(env) -> dict:
    jobs = [j for j in flink.running_jobs(env) if j["name"] == f"adagg-streaming-{env.name}"]
    if len(jobs) != 1:
        raise StackError(f"expected one running adagg-streaming-{env.name} job, found {len(jobs)}; "
                         f"`adagg job submit` starts one")
    return jobs[0]


def upgrade(env_name: str, sql_dir: Path = SQL_DIR, check_only: bool = False, say=print) -> int:
    from adagg.kafka_io import ensure_topics

    env = load(env_name)
    job = streaming_job(env)
    running = flink.kept_plan(env, job["jid"])
    with tempfile.TemporaryDirectory(prefix="upgrade-", dir=paths.home()) as work:
        new_sql = Path(work) / f"streaming.{env_name}.sql"
        new_sql.write_text(render(env, "streaming", sql_dir=sql_dir))
        say(f"  compiling the plan of {sql_dir} for {env_name} ...")
        result = carry_over(running["plan"], flink.compile_plan(env_name, new_sql))
        say(explain(result))
        if not result.compatible:
            say(f"  upgrade refused: job {job['jid']} keeps running unchanged")
            return REFUSED
        if check_only:
            say(f"  --check: nothing was stopped; `adagg job upgrade` would move job {job['jid']} to this plan")
            return 0
        ensure_topics(env, say=say, sql_dir=sql_dir)
        target = paths.env_uri(env.flink.savepoint_dir)
        location = flink.stop_with_savepoint(env.flink.rest_url, job["jid"], target)
        flink.keep_plan_for_savepoint(env, job["jid"], location)
        say(f"  stopped job {job['jid']} with savepoint {location}")
        try:
            job_id = flink.submit(env_name, from_savepoint=location, sql_file=new_sql, plan=result.plan, say=say)
            flink.wait_running(env.flink.rest_url, job_id)
        except StackError as exc:
            say(f"  the upgraded job did not start ({exc}); rolling back to the old plan from {location}")
            flink.cancel_all(env, say=say)  # a new job that was submitted but never ran
            job_id = flink.submit_kept(env_name, running, location, say=say)
            flink.wait_running(env.flink.rest_url, job_id)
            return REFUSED
    say(f"  upgraded: job {job_id} runs the new plan from {location}")
    return 0
