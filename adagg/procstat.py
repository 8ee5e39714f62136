"""Processes as /proc/<pid>/stat describes them (Linux): state, parent, session, start time and
CPU time. Read by the stack's bookkeeping, the backfill's CPU count and the benchmarks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stat:
    pid: int
    state: str          # R, S, D, Z ...
    ppid: int
    session: int
    start_ticks: int    # since boot: with the pid, names one process (pids are reused)
    cpu_seconds: float  # user + system


def _name_and_fields(line: str) -> tuple[str, list[str]]:
    """A stat line's name (between the first '(' and the last ')': it may hold spaces and ')') and
    the fields after it: field 3 (state) is fields[0]."""
    head, tail = line.rsplit(")", 1)
    return head.split("(", 1)[1], tail.split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def read(pid: int) -> Stat:
    """OSError when the process is gone (IndexError or ValueError if its line reads torn)."""
    _, fields = _name_and_fields(Path(f"/proc/{pid}/stat").read_text())
    return Stat(pid, fields[0], int(fields[1]), int(fields[3]), int(fields[19]), _cpu_seconds(fields))


def every() -> list[Stat]:
    """Every process that could be read (one ending meanwhile is left out)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append(read(int(entry.name)))
            except (OSError, IndexError, ValueError):
                continue
    return out


def threads(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (thread name, CPU seconds so far)} of a process; {} when it is gone. The names
    are the kernel's (at most 15 characters)."""
    out = {}
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return out
    for tid in tids:
        try:
            name, fields = _name_and_fields(Path(f"/proc/{pid}/task/{tid}/stat").read_text())
            out[tid] = (name, _cpu_seconds(fields))
        except (OSError, IndexError, ValueError):  # gone meanwhile, or a torn line
            continue
    return out
