"""The compute row: CPU-seconds summed over each preset's jobs, and an energy estimate from them."""

import pytest

from pipeline.claims.compute import GPT3_MWH, WATTS_PER_CORE, compute_claim, energy_wh, job_cost


def _preset(*costs, seconds=120.0):
    return {"seconds": seconds, "jobs": [{"metrics": dict(c)} for c in costs]}


def test_each_preset_sums_its_jobs_and_says_which_were_not_recorded():
    results = {
        "claim_mlp": _preset({"time/train_cpu_s": 60.0}, {"time/train_cpu_s": 120.0}),
        "claim_depth": _preset({"time/cpu_s": 180.0}),
        "claim_cnn": _preset({"time/train_s": 100.0}),  # swept before CPU-seconds were recorded
    }
    claim = compute_claim(results)
    assert claim.verdict == "recorded for 2 of 3 presets"
    (table,) = [d for d in claim.details if hasattr(d, "rows")]
    rows = {r[0]: r for r in table.rows}
    assert rows["`claim_mlp`"][1:5] == [2, "2.0", "180", f"{180 * WATTS_PER_CORE / 3600:.2f}"]
    assert rows["`claim_depth`"][3] == "180"
    assert rows["`claim_cnn`"][3] == "not recorded: rerun the preset"
    assert "1.0 Wh (an estimate) for the 2 preset(s)" in claim.measured
    assert float(rows["`claim_mlp`"][5]) == pytest.approx(GPT3_MWH * 1e6 / 0.5, rel=0.02)  # 2 significant digits
    assert compute_claim({"claim_cnn": results["claim_cnn"]}).verdict == "not run"


def test_gpu_seconds_count_at_the_gpus_power():
    job = {"metrics": {"time/train_cpu_s": 36.0, "time/train_gpu_s": 3.6}}
    assert job_cost(job) == (36.0, 3.6)
    assert energy_wh(*job_cost(job)) == pytest.approx((36 * WATTS_PER_CORE + 3.6 * 700) / 3600)
    claim = compute_claim({"claim_cnn": {"seconds": None, "jobs": [job]}})
    assert "(+ 4 GPU-s)" in claim.details[0].rows[0][3] and claim.details[0].rows[0][2] == "-"
