"""The pipeline throughput benchmark's arithmetic (benchmarks/pipeline_throughput.py): both rates
per variant, the ratios from the reading-window rates (and from the whole-run rates beside them),
and the rows the full job and its no-UDF baseline wrote. No JVM, no Kafka."""

from __future__ import annotations

import pytest

from benchmarks.pipeline_throughput import (base_env, output_rows, parse_args, ratios, run_prefix, summarize,
                                            upsert_topics, variant_env)


def run(variant: str, round_no: int, window: int | None, duration_s: float, records: int = 100_000, **extra) -> dict:
    return {"variant": variant, "round": round_no, "records": records, "window_records_per_s": window,
            "reading_window": {"records_per_s": window, "seconds": None if window is None else records / window},
            "job_duration_s": duration_s, "whole_run_records_per_s": round(records / duration_s), **extra}


RUNS = [run("blackhole", 1, 80_000, 5.0), run("full", 1, 4_000, 30.0), run("full_no_udf", 1, 6_000, 20.0),
        run("blackhole", 2, 100_000, 4.0), run("full", 2, 5_000, 25.0), run("full_no_udf", 2, 6_500, 19.0)]


def test_each_variant_keeps_the_best_and_the_median_of_both_rates():
    summary = summarize(RUNS, ["blackhole", "full", "full_no_udf"])
    assert summary["full"]["window_best"] == 5_000 and summary["full"]["window_median"] == 4_500
    assert summary["full"]["whole_run_best"] == 4_000 and summary["full"]["whole_run_median"] == round((3_333 + 4_000) / 2)
    assert summary["blackhole"]["job_duration_s"] == [5.0, 4.0] and summary["blackhole"]["runs"] == 2
    assert "full" not in summarize(RUNS[:1], ["blackhole", "full"])


def test_ratios_come_from_the_reading_window_and_the_whole_run_ones_stand_beside_them():
    rates = ratios(summarize(RUNS, ["blackhole", "full", "full_no_udf"]))
    efficiency, udf = rates["pipeline_efficiency"], rates["python_udf_ratio"]
    assert efficiency["window_best"] == 0.05 and efficiency["window_median"] == round(4_500 / 90_000, 3)
    assert efficiency["whole_run_best"] == 0.16  # 4,000 / 25,000: the blackhole's fixed costs flatter it
    assert udf["window_best"] == round(5_000 / 6_500, 3) and udf["whole_run_best"] == round(4_000 / 5_263, 3)
    assert not efficiency["meets_goal"] and not udf["meets_goal"]
    assert ratios({"full": summarize(RUNS, ["full"])["full"]}) == {}


def test_a_run_without_a_reading_window_gives_no_ratio_rather_than_a_wrong_one():
    runs = [run("blackhole", 1, None, 3.0), run("full", 1, 4_000, 30.0)]
    rates = ratios(summarize(runs, ["blackhole", "full"]))
    assert rates["pipeline_efficiency"]["window_best"] is None and not rates["pipeline_efficiency"]["meets_goal"]
    assert rates["pipeline_efficiency"]["whole_run_best"] is not None


def test_rows_are_compared_topic_by_topic_but_for_the_upsert_changelog():
    full_rows = {"ad-minute": 131_809, "ad-minute-live": 204_207, "ad-events.enriched": 308_561}
    runs = [run("full", 1, 4_000, 30.0, rows=full_rows, timing_dependent=["ad-minute-live"], digest="ab"),
            run("full_no_udf", 1, 6_000, 20.0, rows={**full_rows, "ad-minute-live": 195_799},
                timing_dependent=["ad-minute-live"], digest="ab"),
            run("blackhole", 1, 80_000, 5.0)]
    cmp = output_rows(runs)["full_vs_full_no_udf"]
    assert cmp["equal_topics"] == ["ad-events.enriched", "ad-minute"] and cmp["different_topics"] == {}
    assert cmp["not_compared"] == ["ad-minute-live"] and cmp["rows_full"] == cmp["rows_full_no_udf"] == 440_370
    assert cmp["enriched_events_identical"]
    runs[1]["rows"] = {**runs[1]["rows"], "ad-minute": 79_000}
    runs[1]["digest"] = "cd"
    cmp = output_rows(runs)["full_vs_full_no_udf"]
    assert cmp["different_topics"] == {"ad-minute": {"full": 131_809, "full_no_udf": 79_000}}
    assert not cmp["enriched_events_identical"]
    assert "full_vs_full_no_udf" not in output_rows(runs[:1])


def test_every_run_writes_its_own_topics_and_the_live_tier_is_the_upsert_one():
    from adagg.sql import render

    env = base_env("r1")
    one, two = variant_env(env, "r1", "full_no_udf", 1), variant_env(env, "r1", "full_no_udf", 2)
    assert one.outputs.prefix == run_prefix("r1", "full_no_udf", 1) == "bench.r1.full-no-udf-r1."
    assert one.topics.enriched.name != two.topics.enriched.name and one.flink.consumer_group != two.flink.consumer_group
    assert upsert_topics(render(one, python_udfs=False)) == ["bench.r1.full-no-udf-r1.ad-minute-live"]


def test_arguments():
    args = parse_args([])
    assert args.events == 600_000 and args.repeat == 2 and args.variant_list == ["blackhole", "full", "full_no_udf"]
    with pytest.raises(SystemExit):
        parse_args(["--variants", "full,nope"])
