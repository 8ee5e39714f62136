"""benchmarks/state_gc_pauses.py reads its figures from the JVM's GC log: the parsing, on lines of
both collectors as JDK 17 writes them."""

from benchmarks.state_gc_pauses import pauses, summarize

LOG = """\
[0.011s][info][gc] Using Parallel
[8.196s][info][gc] GC(6) Pause Young (Allocation Failure) 793M->55M(2944M) 43.317ms
[267.138s][info][gc] GC(43) Pause Young (Allocation Failure) 2531M->1735M(3010M) 562.648ms
[329.214s][info][gc] GC(51) Pause Full (Ergonomics) 2899M->2007M(2984M) 4541.364ms
[380.617s][info][gc] GC(124) Pause Remark 2572M->2512M(3072M) 8.093ms
[381.597s][info][gc] GC(124) Pause Cleanup 2626M->2626M(3072M) 0.363ms
[381.602s][info][gc] GC(124) Concurrent Mark Cycle 3746.923ms
[390.000s][info][gc] GC(125) Pause Young (Normal) (G1 Evacuation Pause) 1557M->1138M(3072M) 152.522ms
"""


def test_every_pause_and_nothing_else(tmp_path):
    log = tmp_path / "gc.log"
    log.write_text(LOG)
    found = pauses(log)
    assert [kind for _, kind, _ in found] == ["Young", "Young", "Full", "Remark", "Cleanup", "Young"]
    assert found[2] == (329.214, "Full", 4541.364)
    summary = summarize(found, settle_s=250.0)
    assert summary["pauses"] == 6 and summary["longest_ms"] == 4541 and summary["full_collections"] == 1
    # After 250 s: every pause but the first, over the 140 s to the last one.
    assert summary["stopped_s_after_settle"] == round((562.648 + 4541.364 + 8.093 + 0.363 + 152.522) / 1000, 1)
    assert summary["span_after_settle_s"] == 140
