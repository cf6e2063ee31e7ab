"""Particle-level quark/gluon set: EnergyFlow's decays and pid set, the heavy-quark veto, the pT-hat window study."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.qg import energyflow, particle_level
from jetcloud.qg import plots as qg_plots
from jetcloud.qg import simulate as qg
from jetcloud.sim.pythia import final_state, make_pythia

pythia8mc = pytest.importorskip("pythia8mc")
NEUTRINOS = {12, 14, 16}


def _particle_data():
    return pythia8mc.Pythia("", False).particleData


def test_decayed_hadron_list_is_what_it_says():
    """DECAYED_HADRONS = every hadron Pythia decays whose lifetime lies between the 10 mm rule and 1 m."""
    pd = _particle_data()
    ids, i = [], 1
    while i:
        ids.append(i)
        i = pd.nextId(i)
    between = {j for j in ids if pd.isHadron(j) and pd.mayDecay(j) and 10.0 < pd.tau0(j) < 1000.0}
    assert between == set(energyflow.DECAYED_HADRONS)
    for pid in energyflow.STABLE_PIDS:  # nothing EnergyFlow keeps decays under Pythia's defaults
        assert not (pd.mayDecay(pid) and pd.canDecay(pid)) or pd.tau0(pid) > 1000.0
    assert {pd.name(p).replace("bar", "") for p in energyflow.DECAYED_HADRONS} == {
        "K_S0",
        "Lambda0",
        "Sigma-",
        "Sigma+",
        "Xi-",
        "Xi0",
        "Omega-",
    }


@pytest.mark.parametrize("label", [qg.QUARK, qg.GLUON])
def test_particle_settings_leave_only_energyflow_pids(label):
    cfg = qg.ParticleConfig()
    pdg = np.abs(final_state(make_pythia("zjet", 7, cfg.settings(label)).nextBatch(15)).pdg)
    assert set(pdg.tolist()) <= set(energyflow.STABLE_PIDS) | NEUTRINOS
    # the same events with the image set's 10 mm rule hold the hadrons the particle set decays
    tau10 = tuple(s for s in cfg.settings(label) if not s.startswith("ParticleDecays"))
    pdg10 = np.abs(final_state(make_pythia("zjet", 7, tau10).nextBatch(15)).pdg)
    assert set(pdg10.tolist()) & set(energyflow.DECAYED_HADRONS)


def test_simulated_file_holds_only_energyflow_pids(tmp_path):
    cfg = qg.ParticleConfig(n_quark=3, n_gluon=3, seed=3, chunk_jets=3)
    summary = qg.simulate_particles(cfg, tmp_path / "pl.npz", workers=1, progress=False)
    x, y = energyflow.read_qg_npz(tmp_path / "pl.npz")
    assert x.shape == (6, summary["max_multiplicity"], 4)
    real = x[..., 0] > 0
    assert set(np.abs(x[..., 3][real]).astype(int).tolist()) <= set(energyflow.STABLE_PIDS)
    assert summary["cpu_seconds"]["select"] > 0 and summary["cpu_seconds"]["jets"] > 0


def test_heavy_quark_veto_keeps_light_quarks_only():
    hooks = qg.heavy_quark_veto()
    pythia = make_pythia("zjet", 11, qg.ParticleConfig().settings(qg.QUARK), hooks=hooks)
    partons = qg.hard_partons(pythia.nextBatch(120))
    flavours = set(np.abs(partons["pdg"]).tolist())
    assert flavours <= {1, 2, 3, 21} and flavours & {1, 2, 3}
    assert hooks.n_vetoed > 0  # c and b sea quarks make ~10% of q g -> Z q


def test_pt_hat_window_config():
    cfg = qg.ParticleConfig()
    lo, hi = cfg.pt_hat
    assert lo == qg.PT_HAT_FACTORS[0] * 500.0 and hi == qg.PT_HAT_FACTORS[1] * 550.0
    assert f"PhaseSpace:pTHatMax = {hi}" in cfg.settings(qg.GLUON)
    assert qg.ParticleConfig(pt_hat_min=300.0, pt_hat_max=900.0).pt_hat == (300.0, 900.0)
    for bad in ({"pt_hat_min": 600.0, "pt_hat_max": 500.0}, {"pt_hat_min": -1.0}, {"pt_hat_min": 7000.0}):
        with pytest.raises(ValueError, match="pT-hat"):
            qg.ParticleConfig(**bad)


def test_window_table_and_choice_on_a_known_case():
    # 8 events: pT-hat and acceptance chosen so the counts are known
    events = {
        "pt_hat": np.array([310.0, 360.0, 410.0, 460.0, 510.0, 560.0, 700.0, 950.0]),
        "accepted": np.array([False, True, False, True, True, True, False, True]),
    }
    rows = particle_level.window_table(events, [(300.0, 1000.0), (350.0, 800.0), (400.0, 600.0)])
    assert [r["kept"] for r in rows] == [5, 4, 3]
    assert rows[0]["lost"] == 0.0 and rows[1]["lost"] == pytest.approx(0.2) and rows[2]["lost"] == pytest.approx(0.4)
    assert [r["events_per_jet"] for r in rows] == pytest.approx([8 / 5, 6 / 4, 4 / 3])
    assert rows[1]["lost_err"] == pytest.approx(np.sqrt(0.2 * 0.8 / 5))
    assert 0.2 < rows[1]["lost_upper"] < 1 and 0 < rows[0]["lost_upper"] < 0.5  # zero observed, n = 5
    scan = {qg.QUARK: rows, qg.GLUON: rows}
    assert particle_level.choose_window(scan, max_loss=0.5) == (300.0, 1000.0)
    assert particle_level.choose_window(scan, max_loss=1.0) == (400.0, 600.0)
    with pytest.raises(ValueError, match="no candidate"):
        particle_level.choose_window({qg.QUARK: rows[1:]}, max_loss=0.01)


def test_pt_hat_window_study_small():
    cfg = qg.ParticleConfig(seed=2)
    res = particle_level.pt_hat_window_study(cfg, 120, candidates=[cfg.pt_hat], chunk_events=60, workers=1)
    assert res["windows"]["chosen"] == cfg.pt_hat
    for c in (qg.QUARK, qg.GLUON):
        r = res[c]
        assert len(r["events"]["pt_hat"]) == 120 and len(r["reference"]) == len(res["edges"]) - 1
        assert np.all(r["window"] <= r["reference"])  # the window's jets are a subset of the reference's
        lo, hi = res["windows"]["reference"]
        assert np.all((r["events"]["pt_hat"] > lo) & (r["events"]["pt_hat"] < hi))
        assert r["scan"][0]["kept"] == r["window"].sum() == r["chosen"]["kept"]
    fig = qg_plots.pt_hat_window(res)
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="inside the reference"):
        particle_level.pt_hat_window_study(cfg, 10, reference=(400.0, 600.0))


def test_pid_composition_on_a_hand_built_file():
    x = np.zeros((3, 4, 4))
    x[0, :3, 0], x[0, :3, 3] = 1.0, [22, -211, 211]  # quark: photon, two pions
    x[1, :4, 0], x[1, :4, 3] = 1.0, [22, 22, 2112, 310]  # gluon: two photons, a neutron, a K0S (not in the map)
    x[2, :1, 0], x[2, :1, 3] = 1.0, [-11]  # gluon: a positron
    table = energyflow.pid_composition(x, np.array([1.0, 0.0, 0.0]))
    assert table["quark"]["photon"] == pytest.approx(1 / 3) and table["quark"]["pi+-"] == pytest.approx(2 / 3)
    assert table["quark"]["other"] == 0.0
    assert table["gluon"]["photon"] == pytest.approx(0.4) and table["gluon"]["other"] == pytest.approx(0.2)
    assert table["gluon"]["e+-"] == pytest.approx(0.2) and table["gluon"]["n"] == pytest.approx(0.2)
    assert sum(table["gluon"].values()) == pytest.approx(1.0)
    assert len(qg_plots.pid_composition(table).axes) == 1
