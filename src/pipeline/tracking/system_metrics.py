"""System metrics sampled into a run while a stage works in it: CPU %, memory, disk and network,
and GPU utilisation and memory where NVIDIA's NVML binding (`nvidia-ml-py`) is installed.

MLflow's own monitor (the one `mlflow.start_run(log_system_metrics=True)` starts) does the
sampling, under the metric names `system/cpu_utilization_percentage`, `system/system_memory_usage_megabytes`,
`system/gpu_0_utilization_percentage`, ...; the UI shows them on the run's *System metrics* tab.
The pipeline's runs are opened and closed by the client API (runs.py), not by the fluent
`start_run`, so the monitor is started and stopped here, around the stage's work: stopped when the
block ends, whether it finished, failed or was interrupted (KeyboardInterrupt, SIGTERM's
SystemExit). A process killed outright takes the monitor's daemon thread with it. A tracking server
that does not answer never stops the stage: MLflow's monitor stops sampling after its failed
request (a warning), and the stage waits at most FINISH_WAIT_S for it at the end.

A sample is logged at the end of each interval: a stage shorter than one interval records none.
Settings (conf/tracking/): `tracking.system_metrics` (true/false), `tracking.system_metrics_interval`
(seconds); MLflow's MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, if set, wins over the interval.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.tracking.runs import Run

#: The prefix of every system metric MLflow's monitor logs.
PREFIX = "system/"
MONITOR_LOGGER = "mlflow.system_metrics.system_metrics_monitor"
FINISH_WAIT_S = 10.0


@contextlib.contextmanager
def system_metrics(run: Run | None, tracking: Mapping[str, Any]) -> Iterator[None]:
    """Sample system metrics into `run` for the duration of the block; nothing if `run` is None
    (a DDP rank other than 0) or `tracking.system_metrics` is false."""
    if run is None or not tracking.get("system_metrics", True):
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # Its start and stop notices say nothing a user acts on; warnings (a failed sample) still show.
    logging.getLogger(MONITOR_LOGGER).setLevel(logging.WARNING)
    monitor = SystemMetricsMonitor(
        run.run_id,
        sampling_interval=float(tracking.get("system_metrics_interval", 2)),
        # Evaluation and a resumed training write into the run training opened: continue its steps.
        resume_logging=True,
        tracking_uri=run.uri,
    )
    monitor.start()
    try:
        yield
    finally:
        # finish() wakes the sampling thread, joins it and writes what it holds. With the tracking server
        # down, the thread sits in MLflow's HTTP retries (minutes): the stage waits a bounded time only.
        stopper = threading.Thread(target=monitor.finish, name="system-metrics-finish", daemon=True)
        stopper.start()
        stopper.join(FINISH_WAIT_S)
        if stopper.is_alive():
            print(
                f"[tracking] the last system metrics were not sent: the tracking server {run.uri} does not answer",
                file=sys.stderr,
                flush=True,
            )
