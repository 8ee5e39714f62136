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


def read(pid: int) -> Stat:
    """OSError when the process is gone (IndexError or ValueError if its line reads torn)."""
    # The fields after the name, which may hold spaces and ')': field 3 (state) is fields[0].
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return Stat(pid, fields[0], int(fields[1]), int(fields[3]), int(fields[19]),
                (int(fields[11]) + int(fields[12])) / TICKS)


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
            line = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = line.rsplit(")", 1)[1].split()
        out[tid] = (line[line.index("(") + 1:line.rindex(")")], (int(fields[11]) + int(fields[12])) / TICKS)
    return out
