"""The benchmark report helpers: ratios, peak memory, the JSON object and its saved copy."""

from __future__ import annotations

import json

import pytest

from jetcloud import benchreport


def test_median_ratio_of_pairs() -> None:
    out = benchreport.median_ratio([(3.0, 2.0), (10.0, 2.0), (2.0, 2.0)])
    assert out == {"median": 1.5, "all": [1.5, 5.0, 1.0]}
    with pytest.raises(ValueError, match="at least one"):
        benchreport.median_ratio([])
    with pytest.raises(ValueError, match="denominators must be > 0"):
        benchreport.median_ratio([(1.0, 0.0)])


def test_timed_returns_result_wall_and_cpu() -> None:
    result, wall, cpu = benchreport.timed(lambda: sum(range(100_000)))
    assert result == sum(range(100_000)) and wall > 0 and cpu >= 0


def test_report_is_one_json_line_and_saved(tmp_path) -> None:
    rss = benchreport.peak_rss_mib()
    assert rss["self"] > 10 and rss["children"] >= 0  # a Python process with numpy holds tens of MiB
    line = benchreport.report("demo", {"jets_per_s": 12.5, "ratio": 1.2}, save=tmp_path / "results" / "demo.json")
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["benchmark"] == "demo" and obj["jets_per_s"] == 12.5 and obj["machine"]["cpus"] >= 1
    assert len(obj["machine"]["load_avg"]) == 3
    assert json.loads((tmp_path / "results" / "demo.json").read_text()) == obj
    assert not list((tmp_path / "results").glob(".*tmp"))
    with pytest.raises(ValueError, match="benchmark"):
        benchreport.report("demo", {"benchmark": "x"})
    with pytest.raises(ValueError):
        benchreport.report("demo", {"ratio": float("nan")})  # never a NaN in the saved figures
