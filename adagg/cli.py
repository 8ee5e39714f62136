"""adagg command line: set up, run the local stack, render SQL, apply Pinot tables, run the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adagg import env as envs
from adagg import paths

GRAIN_NAMES = ("minute", "hour", "day")


def _env_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="local", help="environment file under infra/env (default: local)")


def cmd_setup(args) -> None:
    from adagg.setup import fetch

    fetch(force=args.force)


def cmd_stack(args) -> None:
    from adagg.stack import Stack, tail

    stack = Stack(args.env)
    if args.action == "up":
        from adagg.setup import fetch

        fetch()
        t0 = time.monotonic()
        from adagg.paths import logs

        print(f"Starting the local stack (logs in {logs()}) ...")
        stack.up(args.only)
        print(f"Stack is up ({time.monotonic() - t0:.1f} s).")
        print("\n".join(stack.urls()))
    elif args.action == "down":
        stack.down(args.only)
        print(f"Stopped: {', '.join(args.only)}." if args.only else "Stack is down.")
    elif args.action == "status":
        rows = stack.status()
        print(f"{'service':20} {'pid':>7} {'state':9} {'RSS MB':>7}  url")
        for r in rows:
            state = "healthy" if r["healthy"] else ("starting" if r["running"] else "stopped")
            print(f"{r['service']:20} {r['pid'] or '-':>7} {state:9} {r['rss_mb'] or '-':>7}  {r['url']}")
        total = sum(r["rss_mb"] or 0 for r in rows)
        print(f"{'total':20} {'':7} {'':9} {total:7.0f}")
    elif args.action == "logs":
        names = [s.name for s in stack.select(args.only)]
        for name in names:
            print(f"==> {stack.log_file(name)} <==")
            print(tail(stack.log_file(name), args.lines))


def cmd_superset(args) -> None:
    from adagg import superset
    from adagg.stack import Stack
    from adagg.superset_bundle import load_spec

    env = envs.load(args.env)
    if args.action == "bundle":  # for a Superset elsewhere: no local stack needed
        from adagg.superset_bundle import render, zipped

        out = Path(args.out or "adagg_dashboards.zip")
        out.write_bytes(zipped(render(env)))
        print(f"wrote {out}: the dashboards for environment {env.name!r} (import: docs/dashboards.md#production)")
        return
    stack = Stack(args.env)
    base = superset.url(env)
    if args.action == "down":
        stack.down(["superset"])
        print("Superset is stopped.")
        return
    if args.action == "status":
        running = stack.pid("superset") is not None
        print(f"Superset: {'running' if running else 'stopped'} at {base} (user {superset.ADMIN}, password in "
              f"{superset.password_file()})")
        if running:
            print(f"  holds {superset.Client(base).counts()}")
        return
    if args.action == "screenshots":
        from adagg.superset_browser import install_browser, render_dashboards

        why = install_browser()
        if why:
            raise SystemExit(f"error: no headless browser: {why}")
        out = Path(args.out or Path("docs") / "img")
        for r in render_dashboards(base, superset.ADMIN, superset.password_file().read_text(),
                                   [d["slug"] for d in load_spec()["dashboards"]], out):
            print(f"  {r.screenshot}: {r.charts} charts" + (f", ERRORS: {r.errors}" if r.errors else ""))
        return
    if args.action == "up":
        stack.up(["superset"])
    elif stack.pid("superset") is None:
        raise SystemExit("error: Superset is not running: `adagg superset up` starts it and imports the dashboards")
    superset.import_bundle(env, superset.Client(base))
    print(f"Superset: {base} (user {superset.ADMIN}; password in {superset.password_file()}). Dashboards: "
          + ", ".join(f"{base}/superset/dashboard/{d['slug']}/" for d in load_spec()["dashboards"]))


def cmd_sql(args) -> None:
    from adagg.sql import example_params, render

    # The backfill renders for a sample hour here; `adagg backfill` renders it for its range.
    if args.action == "render":
        sys.stdout.write(render(args.env, args.job, **example_params(args.job)))
    else:
        from adagg.plan import explain

        print(explain(args.env, args.job, tuple(args.detail), **example_params(args.job)))


def cmd_pinot(args) -> None:
    from adagg.kafka_io import ensure_topics
    from adagg.pinot import apply

    env = envs.load(args.env)
    if not args.dry_run:
        ensure_topics(env)  # Pinot cannot create a realtime table on a topic that does not exist
    apply(env, dry_run=args.dry_run)


def cmd_job(args) -> None:
    from adagg import flink
    from adagg.kafka_io import ensure_topics
    from adagg.stack import StackError

    env = envs.load(args.env)
    if args.action == "submit":
        ensure_topics(env)
        if args.sql_client:
            from adagg.paths import home
            from adagg.sql import render

            script = home() / "rendered" / f"{args.job}.{args.env}.sql"
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(render(args.env, args.job))
            job_id = flink.submit_sql_client(args.env, script)
        else:
            job_id = flink.submit(args.env, args.job)
        flink.wait_running(env.flink.rest_url, job_id)
    elif args.action in ("stop", "savepoint"):
        jobs = flink.running_jobs(env)
        if not jobs:
            raise StackError(f"no job is running; nothing to {args.action}")
        target = paths.env_uri(env.flink.savepoint_dir)
        for job in jobs:
            if args.action == "savepoint":
                location = flink.trigger_savepoint(env.flink.rest_url, job["jid"], target)
                flink.keep_plan_for_savepoint(env, job["jid"], location)
                print(f"  savepoint of Flink job {job['jid']} ({job['name']}), which keeps running: {location}")
                continue
            location = flink.stop_with_savepoint(env.flink.rest_url, job["jid"], target)
            flink.keep_plan_for_savepoint(env, job["jid"], location)
            print(f"  stopped Flink job {job['jid']} ({job['name']}); savepoint: {location}")
            print(f"  resume it with: adagg job resume --from {location}")
    elif args.action == "status":
        import json

        from adagg.job_status import format_status, job_status

        rows = [job_status(env, job["jid"]) for job in flink.running_jobs(env)]
        print(json.dumps(rows, indent=2) if args.json else format_status(rows))
    elif args.action == "resume":
        if not args.from_savepoint:
            raise StackError("resume needs --from SAVEPOINT (the location `adagg job stop` printed)")
        ensure_topics(env)
        kept = flink.plan_for_savepoint(env, args.from_savepoint)
        if kept is None:
            print(f"  no plan is kept for {args.from_savepoint}: compiling the current SQL (Flink refuses the "
                  f"restore if its operators do not match the savepoint's)")
            job_id = flink.submit(args.env, args.job, from_savepoint=args.from_savepoint)
        else:  # the plan the savepoint's job ran: its operator ids are the savepoint's
            job_id = flink.submit_kept(args.env, kept, args.from_savepoint)
        flink.wait_running(env.flink.rest_url, job_id)
    elif args.action == "upgrade":
        from adagg.job_upgrade import upgrade

        code = upgrade(args.env, Path(args.sql_dir), check_only=args.check)
        if code:
            raise SystemExit(code)
    elif args.action == "list":
        for job in flink.running_jobs(env):
            print(f"{job['jid']}  {job['state']:10}  {job['name']}")
    elif args.action == "cancel":
        flink.cancel_all(env)


def cmd_traffic(args) -> None:
    from adagg import flink
    from adagg.demo import make_traffic, next_start_ms
    from adagg.kafka_io import ensure_topics, send_traffic

    env = envs.load(args.env)
    traffic = make_traffic(env, seed=args.seed, events=args.events, ads=args.ads, start_ms=next_start_ms(env))
    ensure_topics(env)
    try:
        job_running = bool(flink.running_jobs(env))
    except OSError:  # requests' connection errors: no Flink cluster to ask
        job_running = False
    if not job_running:
        print("  no streaming job is running (adagg job submit): lateness is decided on arrival, so the "
              "oracle holds only if the job reads the traffic live")
    url = None
    if args.via_collector:
        from collector.client import collector_url, wait_ready

        url = collector_url(env)
        wait_ready(url)
    send_traffic(env, traffic, catch_up_timeout_s=180 if job_running else 0, collector_url=url)
    if args.oracle:
        with open(args.oracle, "w") as fh:
            fh.write(traffic.oracle.to_json())
        print(f"  oracle written to {args.oracle}")


def cmd_collect(args) -> None:
    from collector.config import new_key

    if args.action == "keygen":
        plaintext, digest = new_key(args.name)
        print(f"API key (give it to the sender; it is not stored anywhere): {plaintext}\n"
              f"Add to collector.api_keys in infra/env/{args.env}.yaml:\n"
              f"    - name: {args.name}\n      sha256: {digest}\n"
              f"      event_types: [impression, click, conversion]\n      rate_per_second: 10000\n      burst: 20000")
        return
    from collector.server import parse_sets, run

    run(args.env, parse_sets(args.set or []), host=args.host, port=args.port, workers=args.workers,
        log_level=args.log_level)


def cmd_query(args) -> None:
    """The query API's queries from the command line; JSON out, the same as the API answers."""
    import json

    from serving import answers
    from serving.params import Filters
    from serving.runner import PinotRunner

    env = envs.load(args.env)
    run = PinotRunner(env.pinot.broker_url)
    try:
        if args.what == "top":
            answer = answers.top_ads(run, args.n, args.minutes,
                                     Filters.of(args.country, args.device_type, args.campaign_id, args.advertiser_id))
        elif args.what == "metrics":
            answer = answers.ad_metrics(run, args.ad, args.start, args.end, args.grain,
                                        Filters.of(args.country, args.device_type, args.campaign_id, args.advertiser_id))
        elif args.what in ("campaign", "advertiser"):
            key = args.campaign_id if args.what == "campaign" else args.advertiser_id
            answer = answers.summary(run, args.what, key, args.start, args.end,
                                     Filters.of(args.country, args.device_type))
        elif args.what == "late":
            answer = answers.late_events(run, args.start, args.end, args.ad)
        else:
            answer = answers.freshness(run)
    finally:
        run.close()
    print(json.dumps(answer, indent=2))


def cmd_archive(args) -> None:
    from archive.manifest import partitions_between, seal_all, verify
    from reconcile.backfill import archive_dir
    from serving.params import time_ms

    env = envs.load(args.env)
    root = archive_dir(env)
    if args.action == "seal":
        written = seal_all(root) if root.exists() else []
        print(f"{len(written)} partitions sealed or extended under {root}")
        return
    partitions = partitions_between(time_ms("from", args.start), time_ms("to", args.end))
    manifests = verify(root, partitions)
    print(f"{len(manifests)} sealed partitions check out ({sum(m['rows'] for m in manifests):,} rows)")


def cmd_backfill(args) -> None:
    from reconcile import backfill
    from serving.params import time_ms

    env = envs.load(args.env)
    lo, hi = time_ms("from", args.start), time_ms("to", args.end)
    out = Path(args.out) if args.out else backfill.reports_dir(env) / "backfill" / f"{lo}_{hi}"
    backfill.run(env, lo, hi, out)


def cmd_reconcile(args) -> None:
    from reconcile import run as reconciliation
    from reconcile import schedule
    from serving.params import time_ms
    from serving.runner import PinotRunner

    env = envs.load(args.env)
    run = PinotRunner(env.pinot.broker_url, timeout_s=120)
    try:
        if args.schedule:
            schedule.schedule(env, run, args.interval, args.once)
        else:
            if not (args.start and args.end):
                raise ValueError("give --from and --to, or --schedule")
            reconciliation.reconcile(env, run, time_ms("from", args.start), time_ms("to", args.end),
                                     publish_corrections=not args.dry_run)
    finally:
        run.close()


def cmd_report(args) -> None:
    from reconcile import schedule
    from serving.runner import PinotRunner

    env = envs.load(args.env)
    run = PinotRunner(env.pinot.broker_url, timeout_s=120)
    try:
        schedule.billing_report(env, run, args.date, source=args.source, out=Path(args.out) if args.out else None)
    finally:
        run.close()


def cmd_lineage(args) -> None:
    import json

    from serving.lineage import format_lineage, lineage, parse_key, sources_of
    from serving.runner import PinotRunner

    env = envs.load(args.env)
    key = parse_key(args.table, args.key)
    run = PinotRunner(env.pinot.broker_url, timeout_s=60)
    try:
        answer = lineage(run, args.table, key, sources_of(env))
    finally:
        run.close()
    print(json.dumps(answer, indent=2) if args.json else format_lineage(answer))


def cmd_slo(args) -> None:
    from adagg.paths import write_atomically
    from adagg.slo import check_rules, check_scrape, format_report, render_rules, render_scrape, report, write_rules
    from adagg.stack import StackError

    if args.action == "report":
        import json

        env = envs.load(args.env)
        url = args.prometheus or (f"http://{env.stack.host}:{env.stack.prometheus.port}" if "stack" in env else None)
        if not url:
            raise StackError(f"environment {args.env!r} has no local Prometheus: give its URL with --prometheus")
        rows = report(env, url)
        print(json.dumps(rows, indent=2) if args.json else format_report(rows))
        return
    if args.action == "rules":
        if args.out:
            print(f"wrote {write_rules(args.env, Path(args.out))}")
        else:
            print(render_rules(args.env), end="")
        return
    if args.action == "scrape":
        try:
            text = render_scrape(args.env)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        if args.out:
            print(f"wrote {write_atomically(Path(args.out), text)}")
        else:
            print(text, end="")
        return
    checks = [check_rules(args.env)] + ([check_scrape(args.env)] if "monitoring" in envs.load(args.env) else [])
    for done in checks:
        print((done.stdout + done.stderr).strip())
    if any(done.returncode != 0 for done in checks):
        raise SystemExit(1)


def cmd_serve(args) -> None:
    from serving.server import run

    run(args.env, host=args.host, port=args.port)


def cmd_deploy(args) -> None:
    from adagg.deploy import write

    plan = None
    if args.with_plan:
        from adagg.deploy_plan import compile_for

        if not args.out:
            raise SystemExit("--with-plan needs --out: infra/k8s/<env>/ holds the manifests without a plan "
                             "(a unit test compares them with a fresh render)")
        code, plan = compile_for(args.env, Path(args.against) if args.against else None)
        if code:
            raise SystemExit(code)
    elif args.against:
        raise SystemExit("--against compares plans: it needs --with-plan")
    for path in write(args.env, Path(args.out) if args.out else None, plan=plan):
        print(f"wrote {path}")


def cmd_demo(args) -> None:
    from adagg.demo import run_demo

    run_demo(args.env, events=args.events, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adagg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Start with `adagg demo`; see README.md.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("setup", help="fetch the JVM artifacts (Kafka, Pinot, Flink connector) from Maven Central")
    p.add_argument("--force", action="store_true", help="fetch again even if the cache is up to date")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("stack", help="start, stop and inspect the local Kafka + Flink + Pinot stack",
                       description="Manage the local stack. `up` is idempotent and waits until every service "
                                   "is healthy; `down` stops exactly what `up` started.")
    p.add_argument("action", choices=["up", "down", "status", "logs"])
    p.add_argument("--only", nargs="+", metavar="SERVICE",
                   help="limit to these services (kafka, zookeeper, pinot-*, flink-*, or the groups pinot, flink)")
    p.add_argument("-n", "--lines", type=int, default=40, help="log lines to show (logs)")
    _env_arg(p)
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("superset", help="Superset with the dashboards of superset/, an optional part of the stack",
                       description="up: install Superset into its own venv under .adagg/ (first time), start it on "
                       "the stack's superset port, create the admin (password generated and printed once) and import "
                       "the dashboards. import: import them again (idempotent: updates in place). screenshots: render "
                       "each dashboard in headless Chromium into --out. bundle: the import bundle for --env, for a "
                       "Superset elsewhere. down, status. docs/dashboards.md.")
    p.add_argument("action", choices=["up", "down", "import", "status", "screenshots", "bundle"])
    p.add_argument("--out", help="screenshots: where to write <slug>.png (default docs/img, the pictures of "
                                 "docs/dashboards.md); bundle: the zip to write (default adagg_dashboards.zip)")
    _env_arg(p)
    p.set_defaults(func=cmd_superset)

    p = sub.add_parser("sql", help="render the Flink SQL of a job for an environment, or print its plan",
                       description="render: the job's SQL for the environment. explain: Flink's plan of it "
                       "(EXPLAIN; planned locally, never submitted), e.g. --detail CHANGELOG_MODE or "
                       "--detail JSON_EXECUTION_PLAN.")
    p.add_argument("action", choices=["render", "explain"])
    p.add_argument("--job", default="streaming", help="job under sql/jobs (default: streaming)")
    p.add_argument("--detail", action="append", default=[], choices=["ESTIMATED_COST", "CHANGELOG_MODE",
                   "PLAN_ADVICE", "JSON_EXECUTION_PLAN"], help="explain: an EXPLAIN detail (repeatable)")
    _env_arg(p)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("slo", help="the service-level objectives: report, alerting rules, scrape configs",
                       description="report: each SLO's current value, its target and whether it is met, "
                       "from Prometheus. rules: infra/monitoring/alerts.yml.j2 with the environment's slo: targets, "
                       "for a Prometheus's rule_files (the local stack's loads them itself). scrape: the "
                       "scrape_configs of the environment's services (its monitoring: section), to merge into an "
                       "existing Prometheus. check: rules and scrape configs, checked with promtool.")
    p.add_argument("action", choices=["report", "rules", "scrape", "check"])
    p.add_argument("--out", help="rules, scrape: write to this file instead of printing")
    p.add_argument("--json", action="store_true", help="report: as JSON")
    p.add_argument("--prometheus", help="report: the Prometheus to ask (default: the local stack's)")
    _env_arg(p)
    p.set_defaults(func=cmd_slo)

    p = sub.add_parser("lineage", help="where one aggregate row comes from: tier, versions, archive manifests, "
                                       "reconciliation changes",
                       description="The row of TABLE under its primary key (values in key order, e.g. ad_minute: "
                       "window_start_ms ad_id country device_type campaign_id advertiser_id vertical): its tier, "
                       "version, pipeline and SQL version and computation time; the archive partitions of its window "
                       "with their manifests; the reconcile passes over it and what they changed.")
    p.add_argument("table")
    p.add_argument("key", nargs="+", help="the primary key's values, in key order")
    p.add_argument("--json", action="store_true")
    _env_arg(p)
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("pinot", help="create or update the Pinot schemas and tables")
    p.add_argument("action", choices=["apply"])
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    _env_arg(p)
    p.set_defaults(func=cmd_pinot)

    p = sub.add_parser("job", help="submit, savepoint, stop, resume, list, cancel or show the status of the streaming "
                                   "job on the environment's Flink cluster",
                       description="submit: start the job (no state). savepoint: take a savepoint; the job keeps "
                       "running. stop: stop it with a savepoint, without draining: the sources stop without a final "
                       "watermark, so no open window fires early and the resumed job goes on exactly where it "
                       "stopped (a drain would fire every open window as if the stream had ended, and the resumed "
                       "job would drop their remaining events as late). Savepoints go to the environment's "
                       "flink.savepoint_dir. resume --from SAVEPOINT: start it again from that savepoint (with the "
                       "plan it ran, so its state is found again). upgrade: compare the new SQL's compiled plan with "
                       "the running job's, refuse if any operator's state could not be restored (exit 2), else stop "
                       "with a savepoint and start the new plan from it (--check: compare only). cancel: "
                       "cancel without a savepoint. status: state, restarts, the last checkpoint and its age, the "
                       "watermark after each source, the consumer lag (--json).")
    p.add_argument("action", choices=["submit", "savepoint", "stop", "resume", "upgrade", "list", "cancel", "status"])
    p.add_argument("--json", action="store_true", help="status: as JSON")
    p.add_argument("--check", action="store_true",
                   help="upgrade: only say whether the new SQL can restore the running job's state; stop nothing")
    p.add_argument("--sql-dir", default=str(paths.SQL_DIR), help="upgrade: the SQL to move to (default: sql/)")
    p.add_argument("--job", default="streaming")
    p.add_argument("--from", dest="from_savepoint", metavar="SAVEPOINT", help="resume: the savepoint to start from")
    p.add_argument("--sql-client", action="store_true",
                   help="submit the rendered SQL with Flink's own SQL client instead of the PyFlink entry point")
    _env_arg(p)
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("traffic", help="send generated click traffic to the raw topic and write its oracle")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--ads", type=int, default=25)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--oracle", metavar="FILE", help="write the expected results (JSON) here")
    p.add_argument("--via-collector", action="store_true",
                   help="send through the local stack's collector (HTTP) instead of straight to Kafka")
    _env_arg(p)
    p.set_defaults(func=cmd_traffic)

    p = sub.add_parser("collect", help="run the collector (HTTP ingest into the raw topic), or make an API key")
    p.add_argument("action", nargs="?", default="serve", choices=["serve", "keygen"])
    p.add_argument("--host", help="listen address (default: collector.host)")
    p.add_argument("--port", type=int, help="listen port (default: collector.port)")
    p.add_argument("--workers", type=int, help="worker processes (default: collector.workers)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override an environment value, e.g. --set collector.delivery_timeout_ms=5000")
    p.add_argument("--name", default="new-source", help="name of the key (keygen)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _env_arg(p)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("query", help="the query API's queries (top ads, ad metrics, summaries, late events, "
                                     "freshness) as JSON")
    p.add_argument("what", nargs="?", default="top",
                   choices=["top", "metrics", "campaign", "advertiser", "late", "freshness"])
    p.add_argument("--n", type=int, default=10, help="top: how many ads")
    p.add_argument("--minutes", type=int, default=5, help="top: the newest minute windows to rank over")
    p.add_argument("--ad", help="metrics, late: the ad")
    p.add_argument("--from", dest="start", help="metrics, campaign, advertiser, late: epoch ms or ISO 8601")
    p.add_argument("--to", dest="end", help="end, exclusive")
    p.add_argument("--grain", default="minute", choices=sorted(GRAIN_NAMES))
    for name in ("country", "device_type", "campaign_id", "advertiser_id"):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, help="filter")
    _env_arg(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("serve", help="run the query API (HTTP + OpenAPI) over Pinot")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help="default: serving.port of the environment")
    _env_arg(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("archive", help="seal the raw archive's committed partitions, or check them against "
                                       "their manifests")
    p.add_argument("action", choices=["seal", "verify"])
    p.add_argument("--from", dest="start", help="verify: epoch ms or ISO 8601")
    p.add_argument("--to", dest="end", help="verify: end, exclusive")
    _env_arg(p)
    p.set_defaults(func=cmd_archive)

    p = sub.add_parser("backfill", help="recompute the minute windows of a range from the raw archive "
                                        "(the streaming SQL in Flink batch mode)")
    p.add_argument("--from", dest="start", required=True, help="epoch ms or ISO 8601 (whole hours are read)")
    p.add_argument("--to", dest="end", required=True, help="end, exclusive")
    p.add_argument("--out", help="output folder (default: <archive.reports>/backfill/<from>_<to>)")
    _env_arg(p)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("reconcile", help="compare the serving tables with the archive's recomputation, report "
                                         "mismatches, publish corrections (reconciled tier)")
    p.add_argument("--from", dest="start", help="epoch ms or ISO 8601 (whole hours)")
    p.add_argument("--to", dest="end", help="end, exclusive")
    p.add_argument("--dry-run", action="store_true", help="write the report, publish nothing")
    p.add_argument("--schedule", action="store_true",
                   help="seal, reconcile every closed hour not yet reconciled, bill every finished day; repeat")
    p.add_argument("--interval", type=float, default=300, help="--schedule: seconds between passes")
    p.add_argument("--once", action="store_true", help="--schedule: one pass, then exit")
    _env_arg(p)
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("report", help="write the billing report of a day (CSV + Parquet + digest)")
    p.add_argument("what", choices=["billing"])
    p.add_argument("--date", required=True, help="YYYY-MM-DD (UTC)")
    p.add_argument("--source", default="pinot", choices=["pinot", "archive"],
                   help="pinot: the reconciled tier (default); archive: recompute from raw data")
    p.add_argument("--out", help="output folder (default: <archive.reports>/billing/<date>/<source>)")
    _env_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("deploy", help="render the environment's Kubernetes manifests (Flink Kubernetes Operator, "
                                      "collector, query API)",
                       description="render: the FlinkDeployment (application mode) of the streaming job, or a "
                       "session cluster and its FlinkSessionJob, the collector and the query API as Deployments with "
                       "Services and PodDisruptionBudgets, from the environment's deploy: section, into --out "
                       "(default infra/k8s/<env>/: services/ plus application/ or session/). Secrets are referenced "
                       "by name, never rendered. docs/deploy.md.")
    p.add_argument("action", choices=["render"])
    p.add_argument("--out", help="the folder to write to (default: infra/k8s/<env>/)")
    p.add_argument("--with-plan", action="store_true",
                   help="compile the SQL here and make the application-mode job run that plan (a ConfigMap); "
                        "needs --out")
    p.add_argument("--against", metavar="PLAN_JSON",
                   help="--with-plan: the plan the deployment runs now (its ConfigMap's plan.json): the new one "
                        "keeps its operator ids, or the render is refused (exit 2) if a state could not restore")
    _env_arg(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("demo", help="start the stack, create tables, run the job, send traffic, show results")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    _env_arg(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adagg.pinot import PinotError
    from adagg.stack import StackError
    from collector.client import CollectorError
    from archive.manifest import ArchiveError
    from reconcile.schedule import NotReconciled
    from serving.lineage import NotFound
    from serving.runner import PinotUnavailable

    try:
        args.func(args)
    except (StackError, PinotError, PinotUnavailable, CollectorError, envs.EnvError, ValueError, ArchiveError,
            NotReconciled, NotFound) as exc:
        print(f"adagg: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
