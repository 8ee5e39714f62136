"""PyFlink entry point of the jobs: render the SQL for an environment (or take a rendered script)
and submit it.

Runs the same way on a local mini-cluster (`python -m pyflink_jobs.streaming_job ...`) and on a
session cluster (`flink run -py pyflink_jobs/streaming_job.py ...`, which is what `adagg job
submit` does). A script that sets 'execution.runtime-mode' to 'batch' (the backfill, which
`adagg backfill` renders and runs here) gets a batch table environment.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # flink run -py runs us as a file

from adagg.sql import render, split_statements  # noqa: E402

SET_RE = re.compile(r"^SET\s+'([^']+)'\s*=\s*'([^']*)'$", re.S | re.I)
STATEMENT_SET_RE = re.compile(r"^\s*EXECUTE STATEMENT SET", re.I)
# The line main() prints when an attached job has finished; net_runtime_ms reads it back.
NET_RUNTIME_RE = re.compile(r"^job finished: net runtime (\d+) ms$", re.M)


def net_runtime_ms(log: str) -> int | None:
    """The job's net runtime from the output of main(), None if it did not finish attached."""
    match = NET_RUNTIME_RE.search(log)
    return int(match.group(1)) if match else None


def build_table_env(jars: list[str], conf: list[str] = (), batch: bool = False):
    import os

    from pyflink.table import EnvironmentSettings, TableEnvironment

    from adagg.paths import flink_python_path

    # A local mini-cluster runs in the JVM this process starts: thread-mode UDFs need the path.
    os.environ["PYTHONPATH"] = flink_python_path()
    settings = EnvironmentSettings.in_batch_mode() if batch else EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    t_env.get_config().set("python.executable", sys.executable)
    t_env.get_config().set("python.client.executable", sys.executable)
    for item in conf:
        key, _, value = item.partition("=")
        t_env.get_config().set(key.strip(), value.strip())
    if jars:
        t_env.get_config().set("pipeline.jars", ";".join(Path(j).resolve().as_uri() for j in jars))
    return t_env


def run_statement(t_env, statement: str):
    """Apply a SET to the table config, or execute any other statement (returns its TableResult)."""
    match = SET_RE.match(statement.strip())
    if match:
        t_env.get_config().set(match.group(1), match.group(2))
        return None
    return t_env.execute_sql(statement)


def run_script(t_env, script: str, plan: str | None = None, compile_to: str | None = None):
    """Execute a rendered script; returns the TableResult of its statement set.

    plan: run this compiled plan (a COMPILE PLAN output) in place of the script's statement set;
    the script's other statements still give the job its settings and functions. compile_to:
    write the statement set's compiled plan to this file instead of running it (FLIP-190: the plan
    fixes every operator and its id, so a job run from it keeps its operator uids). Both, naming
    the same file: compile the statement set there and run that plan (one JVM for both)."""
    result = None
    for statement in split_statements(script):
        if STATEMENT_SET_RE.match(statement) and (plan or compile_to):
            if compile_to:  # with plan too (the same file): compile, then run what was compiled
                body = STATEMENT_SET_RE.sub("", statement, count=1)
                run_statement(t_env, f"COMPILE PLAN '{Path(compile_to).resolve().as_uri()}' FOR STATEMENT SET{body}")
            statement = f"EXECUTE PLAN '{Path(plan).resolve().as_uri()}'" if plan else None
        if statement:
            result = run_statement(t_env, statement) or result
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="local", help="environment file under infra/env")
    parser.add_argument("--job", default="streaming", help="job under sql/jobs")
    parser.add_argument("--sql-file", help="run this rendered script instead of rendering --job")
    parser.add_argument("--jar", action="append", default=[], help="connector jar (repeatable)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Flink configuration, e.g. rest.port=18081 for a mini-cluster UI")
    parser.add_argument("--detach", action="store_true", help="return once submitted")
    parser.add_argument("--plan", metavar="FILE", help="run this compiled plan instead of the script's statement set")
    parser.add_argument("--compile-plan", metavar="FILE",
                        help="write the compiled plan of the script's statement set to FILE; run nothing "
                        "(unless --plan names the same FILE: then run it)")
    args = parser.parse_args(argv)

    script = Path(args.sql_file).read_text() if args.sql_file else render(args.env, args.job)
    batch = re.search(r"^SET 'execution.runtime-mode' = 'batch';$", script, re.M | re.I) is not None
    result = run_script(build_table_env(args.jar, args.conf, batch=batch), script, plan=args.plan,
                        compile_to=args.compile_plan)
    job_client = result.get_job_client() if result is not None else None
    if job_client is not None:
        print(f"submitted job {job_client.get_job_id()}", flush=True)
        if not args.detach:
            # The net runtime (job start to end, without this process's start-up and planning) is
            # what the benchmarks compare; `adagg backfill` reads this line from the log.
            finished = job_client.get_job_execution_result().result()
            print(f"job finished: net runtime {finished.get_net_runtime()} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
