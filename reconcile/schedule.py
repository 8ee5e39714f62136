"""The billing report of a day (`adagg report billing`) and the scheduled mode of reconciliation
(`adagg reconcile --schedule`): seal what Flink committed, reconcile every sealed hour not yet
reconciled with its current manifest, and write the billing report of every day that is over."""

from __future__ import annotations

import time
from pathlib import Path

from archive.manifest import HOUR_MS, MANIFEST, ArchiveError, Partition, partitions_between, seal_all, verify
from reconcile import backfill, billing
from reconcile.run import DAY_MS, online_rows, reconcile, reconciled_hours


class NotReconciled(RuntimeError):
    """A billing report was asked for a day whose hours are not all reconciled with the current archive."""


def day_range(date: str) -> tuple[int, int]:
    from serving.params import time_ms

    lo = time_ms("date", f"{date}T00:00:00Z")
    if time.strftime("%Y-%m-%d", time.gmtime(lo / 1000)) != date:
        raise ValueError(f"--date must be YYYY-MM-DD; got {date!r}")
    return lo, lo + DAY_MS


def billing_report(env, run, date: str, source: str = "pinot", out: Path | None = None, say=print) -> dict:
    """Write the day's billing files from the reconciled tier (source "pinot"), or straight from
    the raw archive (source "archive": anyone's independent recomputation); returns the digest."""
    lo, hi = day_range(date)
    manifests = verify(backfill.archive_dir(env), partitions_between(lo, hi))
    if not manifests:
        raise ArchiveError(f"the archive holds no sealed partition on {date}")
    out = out or backfill.reports_dir(env) / "billing" / date / source
    if source == "pinot":
        reconciled = reconciled_hours(env)
        stale = [m["partition"] for m in manifests if reconciled.get(m["partition"]) != m["sha256"]]
        if stale:
            raise NotReconciled(f"{len(stale)} hours of {date} are not reconciled with the archive as it is now "
                                f"(first: {stale[0]}); run `adagg reconcile --from {date} --to {backfill.iso(hi)}` first")
        rows = list(online_rows(run, lo, hi).values())
    elif source == "archive":
        done = backfill.run(env, lo, hi, out / "batch", say=say)
        rows = list(done.windows.values())
    else:
        raise ValueError(f"--source must be pinot or archive; got {source!r}")
    digest = billing.write(date, rows, manifests, out, source)
    say(f"billing report {date} from {source}: {len(rows):,} minute rows, {len(manifests)} archive partitions; "
        f"digest {digest['digest'][:16]}... in {out}")
    return digest


def pass_once(env, run, say=print) -> dict:
    """One scheduled pass: seal, reconcile the sealed hours whose manifest was never reconciled
    or changed since (contiguous hours in one batch job), then bill every closed day again if
    anything was reconciled (or it was never billed)."""
    root = backfill.archive_dir(env)
    if not root.exists():
        say("the archive is empty")
        return {"reconciled": [], "billed": []}
    seal_all(root, say=say)
    partitions = [Partition(d.parent.name.removeprefix("dt="), d.name.removeprefix("hr="))
                  for d in sorted(root.glob("dt=*/hr=*")) if (d / MANIFEST).exists()]
    manifests = verify(root, partitions)
    ranges = due_ranges(partitions, manifests, reconciled_hours(env))
    done = [reconcile(env, run, lo, hi, say=say) for lo, hi in ranges]
    if not ranges:
        say("nothing to reconcile: every closed hour is reconciled with its current manifest")
    billed = []
    for day in closed_days(partitions):
        billed_before = (backfill.reports_dir(env) / "billing" / day / "pinot" / f"billing_{day}.digest.json").exists()
        if billed_before and not done:
            continue
        try:
            billed.append(billing_report(env, run, day, say=say))
        except (NotReconciled, ArchiveError) as why:
            say(f"  {day} not billed: {why}")
    return {"reconciled": done, "billed": billed}


def due_ranges(partitions: list[Partition], manifests: list[dict], reconciled: dict[str, str]) -> list[tuple[int, int]]:
    """The hours to reconcile: sealed ones never reconciled, or reconciled with another manifest
    (a late file arrived since), merged into contiguous [lo, hi) ranges."""
    ranges: list[list[int]] = []
    for partition, manifest in sorted(zip(partitions, manifests), key=lambda pm: pm[0].start_ms):
        if reconciled.get(manifest["partition"]) == manifest["sha256"]:
            continue
        start = partition.start_ms
        if ranges and ranges[-1][1] == start:
            ranges[-1][1] = start + HOUR_MS
        else:
            ranges.append([start, start + HOUR_MS])
    return [(lo, hi) for lo, hi in ranges]


def closed_days(partitions: list[Partition]) -> list[str]:
    """Days that are over: a partition at or after the day's end is committed, so the watermark
    has passed the whole day."""
    newest = max((p.start_ms for p in partitions), default=0)
    return sorted(d for d in {p.dt for p in partitions} if day_range(d)[1] <= newest)


def schedule(env, run, interval_s: float, once: bool, say=print) -> None:
    while True:
        say(backfill.iso(time.time() * 1000) + " scheduled reconciliation pass")
        pass_once(env, run, say=say)
        if once:
            return
        time.sleep(interval_s)
