"""What each preset's measurement cost: CPU-seconds (GPU-seconds where it trained on GPUs) summed over
its jobs, and an energy estimate from them, beside a published training cost.

The CPU-seconds are measured (time.process_time of each job's process, every thread, while it
trained or measured). The energy is not: this machine has no power counters, so it is CPU-seconds
times an assumed power per busy core, and the report labels it an estimate.
"""

from __future__ import annotations

from pipeline.claims.model import Claim, Table, Text, metric
from pipeline.common import metric_names as names

WATTS_PER_CORE = 10.0  # assumed: a server CPU's rated power shared over its cores (e.g. 205 W / 28 cores = 7.3 W)
WATTS_PER_GPU = 700.0  # assumed: an H100 SXM's rated board power
GPT3_MWH = 1287.0  # Patterson et al. 2021, Table 4


def job_cost(job: dict) -> tuple[float | None, float]:
    """(CPU-seconds, GPU-seconds) of one job: its training, or a measuring stage's whole job."""
    cpu = metric(job, names.TRAIN_CPU_SECONDS)
    if cpu is None:
        cpu = metric(job, names.JOB_CPU_SECONDS)
    return cpu, metric(job, names.TRAIN_GPU_SECONDS) or 0.0


def energy_wh(cpu_seconds: float, gpu_seconds: float = 0.0) -> float:
    return (cpu_seconds * WATTS_PER_CORE + gpu_seconds * WATTS_PER_GPU) / 3600


def compute_claim(results: dict) -> Claim:
    claim = Claim("C", "What the measurements cost: compute and energy per preset.", None)
    rows, recorded, total_wh = [], 0, 0.0
    for preset, data in sorted(results.items()):
        costs = [job_cost(j) for j in data["jobs"]]
        cpu = [c for c, _ in costs if c is not None]
        gpu = sum(g for _, g in costs)
        minutes = f"{data['seconds'] / 60:.1f}" if data.get("seconds") else "-"
        if len(cpu) < len(costs) or not costs:
            rows.append([f"`{preset}`", len(costs), minutes, "not recorded: rerun the preset", "-", "-"])
            continue
        recorded += 1
        wh = energy_wh(sum(cpu), gpu)
        total_wh += wh
        rows.append(
            [
                f"`{preset}`",
                len(costs),
                minutes,
                f"{sum(cpu):,.0f}" + (f" (+ {gpu:,.0f} GPU-s)" if gpu else ""),
                f"{wh:.2f}",
                f"{GPT3_MWH * 1e6 / wh:.1e}" if wh else "-",
            ]
        )
    if not recorded:
        return claim
    claim.verdict = f"recorded for {recorded} of {len(rows)} presets"
    claim.measured = (
        f"{total_wh:.1f} Wh (an estimate) for the {recorded} preset(s) with recorded CPU-seconds, about "
        f"{GPT3_MWH * 1e6 / total_wh:.0e} times less than GPT-3's training"
    )
    claim.details.append(
        Table(
            [
                "preset",
                "jobs",
                "sweep (min)",
                "CPU-seconds (jobs' training or measuring)",
                "energy, estimated (Wh)",
                "GPT-3's training / this",
            ],
            rows,
        )
    )
    claim.details.append(
        Text(
            "CPU-seconds are measured: each job's process time (all its threads) while it trained or measured, "
            "without start-up, evaluation and brittleness checks; GPU-seconds are training seconds times the "
            f"GPUs held. Energy is an estimate, not a measurement (this machine has no power counters): "
            f"CPU-seconds x {WATTS_PER_CORE:.0f} W per busy core, plus GPU-seconds x {WATTS_PER_GPU:.0f} W, "
            "both assumed. A preset swept before its jobs recorded CPU-seconds says so; rerun it to fill its row."
        )
    )
    return claim
