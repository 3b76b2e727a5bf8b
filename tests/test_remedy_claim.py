"""The report's remedy section: our robust model beside the published figures."""

from __future__ import annotations

import json

from pipeline.claims.brittleness import remedy_claim
from pipeline.claims.catalogue import load_remedy, load_results
from pipeline.claims.model import Table, Text


def _remedy(auto: float, clean: float, train_seconds: float) -> dict:
    parts = {
        "clean": {"acc": clean, "images": 10000, "seconds": 2.0},
        "autoattack_eps0.3": {
            "acc": auto,
            "images": 1000,
            "seconds": 900.0,
            "by_attack": {"apgd-ce": auto + 0.02, "apgd-t": auto, "fab-t": auto, "square": auto, "final": auto},
        },
        "pgd_eps0.3": {"acc": auto + 0.03, "images": 10000, "seconds": 1200.0},
        "sanity_eps0.3": {
            "eps": 0.3,
            "images": 1000,
            "eps_curve": [{"eps": 0.0, "pgd": clean}, {"eps": 0.5, "pgd": 0.0}],
            "strength": [{"steps": 10, "restarts": 1, "pgd": 0.9}],
        },
    }
    checks = {
        "monotone_in_eps": True,
        "near_zero_at_max_eps": True,
        "max_eps": 0.5,
        "acc_at_max_eps": 0.0,
        "stronger_attack_never_helps": True,
        "white_box_acc": auto,
        "square_extra_fooled": 0.0,
        "square_alone_acc": auto + 0.04,
        "square_not_stronger": True,
        "passed": True,
    }
    return {
        "preset": "robust_pgd",
        "run_id": "abc",
        "train_seconds": train_seconds,
        "parts": parts,
        "checks_eps0.3": checks,
        "model": {"arch": "smallconv", "channels": [16, 32]},
        "adversarial": {"method": "pgd"},
    }


def test_remedy_row_sits_beside_the_literature_with_our_time():
    claim = remedy_claim(_remedy(0.885, 0.986, 1800))
    assert claim.verdict == "holds"
    assert "88.50 % on the first 1,000 test images" in claim.measured and "30 min" in claim.measured
    table = claim.details[0]
    assert isinstance(table, Table)
    assert [row[0].split(",")[0] for row in table.rows[:3]] == [
        "Madry et al. 2018",
        "Wong et al. 2020",
        "Zhang et al. 2019",
    ]
    assert table.rows[-1][1:4] == ["98.60 %", "88.50 %", "91.50 %"] and table.rows[-1][4] == "30 min on this CPU"
    assert any("not stronger: True" in d.text for d in claim.details if isinstance(d, Text))


def test_remedy_verdict_fails_below_wong_too_slow_or_not_clean_enough():
    assert remedy_claim(_remedy(0.80, 0.99, 1800)).verdict == "does not hold"
    assert remedy_claim(_remedy(0.90, 0.98, 1800)).verdict == "does not hold"
    assert remedy_claim(_remedy(0.90, 0.99, 4000)).verdict == "does not hold"
    assert remedy_claim(None) is None


def test_remedy_json_is_not_taken_for_a_preset_sweep(tmp_path):
    (tmp_path / "remedy.json").write_text(json.dumps(_remedy(0.9, 0.99, 100)))
    (tmp_path / "claim_mlp.json").write_text(json.dumps({"preset": "claim_mlp", "jobs": []}))
    assert list(load_results(tmp_path)) == ["claim_mlp"]
    assert load_remedy(tmp_path)["preset"] == "robust_pgd"


def test_the_recorded_remedy_is_judged_by_todays_checks():
    """reports/results/remedy.json is committed: a stale record (checks of an older rule) breaks the report."""
    from pathlib import Path

    from pipeline.stages.remedy import checks_of

    recorded = load_remedy(Path(__file__).resolve().parents[1] / "reports" / "results")
    assert recorded is not None, "reports/results/remedy.json is missing"
    judged = {key: value for key, value in recorded.items() if key.startswith("checks")}
    assert judged == checks_of(recorded["parts"]), "re-record it: python -m pipeline.stages.remedy RUN_DIR record"
    claim = remedy_claim(recorded)
    assert claim.measured and claim.verdict
