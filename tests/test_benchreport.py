"""The benchmark report helpers: ratios, peak memory, the JSON object and its saved copy."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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


def _save(folder, name: str, figures: dict) -> None:
    benchreport.report(name, figures, save=folder / f"{name}.json")


def test_goal_rows_and_tables_from_saved_reports(tmp_path) -> None:
    _save(tmp_path, "qg_convert", {
        "jets": 100, "ks": [200], "compression": "lzf", "read_jets_per_s": 1000.0, "convert_jets_per_s": 800.0,
        "convert_over_read": 1.25, "convert_over_read_cpu": 1.3, "goal": {"convert_over_read": 1.5},
    })  # fmt: skip
    _save(tmp_path, "other", {"speedup": 3.0, "goal": {"speedup": 2.0, "absent": 1.0}})
    reports = benchreport.load_reports(tmp_path)
    assert sorted(reports) == ["other", "qg_convert"]
    assert benchreport.goal_rows(reports) == [
        ("other", "speedup", 2.0, 3.0, False),
        ("other", "absent", 1.0, None, None),
        ("qg_convert", "convert_over_read", 1.5, 1.25, True),
        ("qg_convert", "convert_over_read_cpu", 1.5, 1.3, True),
    ]
    body = benchreport.render_tables(reports)
    assert "| `qg_convert` | `convert_over_read`" in body and "| <= 1.5 | 1.25 | **yes** |" in body
    assert "| <= 2 | 3 | **no** |" in body and "| missing | ? |" in body
    assert "read 1000 jets/s, conversion 800 jets/s" in body and "load" in body


def test_replace_between_markers_and_bad_files(tmp_path) -> None:
    text = f"intro\n{benchreport.BEGIN_MARKER}\nold\n{benchreport.END_MARKER}\nrest\n"
    out = benchreport.replace_between_markers(text, "new table\n")
    assert out == f"intro\n{benchreport.BEGIN_MARKER}\nnew table\n{benchreport.END_MARKER}\nrest\n"
    assert benchreport.replace_between_markers(out, "new table") == out  # idempotent
    with pytest.raises(ValueError, match="README: needs exactly one"):
        benchreport.replace_between_markers("no markers", "x")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json: not JSON"):
        benchreport.load_reports(tmp_path)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"bad\.json: not a benchmark report"):
        benchreport.load_reports(tmp_path)


def _benchmark(name: str):
    """A benchmark script of ``benchmarks/`` as a module (its ``main`` is not run)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image_set(jets: int, jets_per_cpu_s: float) -> dict:
    ms = {"pythia": 20.0, "jets": 2.0, "detector": 4.0, "pileup": 3.0, "write": 1.0}
    return {"jets": jets, "jets_per_s_per_core": 1e3 / sum(ms.values()), "jets_per_cpu_s": jets_per_cpu_s,
            "cpu_ms_per_jet": ms}  # fmt: skip


def test_qg_simulation_reports_judge_jets_per_core(tmp_path) -> None:
    sim_qg, sim_particles = _benchmark("simulate_qg"), _benchmark("simulate_particles")
    base = {"pileup_mu": 20.0, "library_events": 1000, "workers": 1, "peak_rss_mib": {"self": 400.0}}
    images_only = sim_qg.build_report(base | {"images": _image_set(300, 40.0)})
    assert images_only["image_jets_per_core"] == 40.0 and "particle_jets_per_core" not in images_only
    assert images_only["goal_min"] == {"image_jets_per_core": 33.3}  # 50 / 1.5 (issue 13)
    both = sim_qg.build_report(base | {"images": _image_set(300, 30.0), "particles": _image_set(200, 35.0)})
    assert both["goal_min"] == {"image_jets_per_core": 33.3, "particle_jets_per_core": 31.0}
    measured = {"n_jets": 120, "jets_per_s": 20.0, "jets_per_s_per_core": 25.0, "pythia_share": 0.8,
                "jets_share": 0.1, "select_share": 0.05, "write_share": 0.05, "peak_rss_mb": 300.0}  # fmt: skip
    particles = sim_particles.build_report(measured)
    assert particles["particle_jets_per_core"] == 25.0 and particles["peak_rss_mib"] == 300.0
    assert particles["jets_per_s_per_core"] == 25.0  # the --json keys of before stay
    _save(tmp_path, "simulate_qg", both)
    _save(tmp_path, "simulate_particles", particles)
    reports = benchreport.load_reports(tmp_path)
    assert benchreport.goal_rows(reports) == [
        ("simulate_particles", "particle_jets_per_core", 31.0, 25.0, False),
        ("simulate_qg", "image_jets_per_core", 33.3, 30.0, False),
        ("simulate_qg", "particle_jets_per_core", 31.0, 35.0, True),
    ]
    body = benchreport.render_tables(reports)
    assert "| `simulate_qg` | `image_jets_per_core`" in body and "| >= 33.3 | 30 | **no** |" in body
    assert "| >= 31 | 35 | **yes** |" in body and "| >= 31 | 25 | **no** |" in body
    assert "300 image jets (pile-up mu 20), 30.0 per CPU second (time shares pythia 67%" in body
    assert "120 particle-level jets, 25.0 per CPU second; time shares pythia 80%" in body
