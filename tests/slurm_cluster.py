"""A throwaway one-host SLURM cluster for the tests: munged, slurmctld and slurmd on loopback,
with their own ports, socket, state and logs in one folder. Debian's slurm-wlm and munge
(scripts/install-test-services.sh); run as root."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# Two nodes on this one host (Debian builds slurmd with MULTIPLE_SLURMD: one slurmd per node,
# each on its own port). The first is named after the host, which resolves: DDP ranks meet at
# the address of the first node in SLURM_NODELIST.
NODE = socket.gethostname()
NODES = (NODE, f"{NODE}-b")


def available() -> str | None:
    """Why no cluster can start here, or None."""
    missing = [
        b
        for b in ("munged", "slurmctld", "slurmd", "sbatch")
        if not shutil.which(b) and not Path(f"/usr/sbin/{b}").exists()
    ]
    if missing:
        return f"{', '.join(missing)} not installed (bash scripts/install-test-services.sh)"
    if os.geteuid() != 0:
        return "the test cluster's daemons run as root"
    if not Path("/etc/munge/munge.key").is_file():
        return "/etc/munge/munge.key is missing (bash scripts/install-test-services.sh)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    folder: Path
    env: dict = field(default_factory=dict)  # SLURM_CONF for sbatch, squeue, scontrol, ...
    pids: list = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(cmd), env={**os.environ, **self.env}, capture_output=True, text=True, check=check, timeout=120
        )

    def job(self, job_id: str) -> dict:
        """`scontrol show job` as a dict (while slurmctld still remembers the job)."""
        out = self.run("scontrol", "-o", "show", "job", str(job_id)).stdout
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    def completed(self) -> dict[str, dict]:
        """Finished jobs from the job completion log (jobcomp/filetxt), by job id."""
        path = self.folder / "jobcomp.txt"
        jobs = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
                jobs[fields["JobId"]] = fields
        return jobs

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log")))


def _config(folder: Path, ctld_port: int, slurmd_ports: list[int], munge_socket: Path) -> str:
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
    return (
        f"""\
ClusterName=pipetest
SlurmctldHost={NODE}(127.0.0.1)
MailProg=/bin/true
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/filetxt
JobCompLoc={folder}/jobcomp.txt
MinJobAge=3600
DefMemPerCPU=1024
KillWait=30
"""
        + "".join(
            f"NodeName={name} NodeAddr=127.0.0.1 NodeHostname={NODE} Port={port} CPUs=2 "
            f"RealMemory={mem_mb} State=UNKNOWN\n"
            for name, port in zip(NODES, slurmd_ports, strict=False)
        )
        + f"PartitionName=debug Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4\n"
    )


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def cluster(folder: Path):
    """Start munged, slurmctld and slurmd; stop every one of them on the way out, whatever happened."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "munge", *(f"spool/{n}" for n in NODES)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    munge_socket = folder / "munge" / "munge.socket"
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder, _free_port(), [_free_port() for _ in NODES], munge_socket))
    c = Cluster(folder, env={"SLURM_CONF": str(conf)})
    daemons = [
        (
            "munged",
            [
                "munged",
                "--force",
                f"--socket={munge_socket}",
                f"--pid-file={folder}/munge/munged.pid",
                f"--log-file={folder}/munged.log",
                f"--seed-file={folder}/munge/seed",
            ],
            folder / "munge" / "munged.pid",
        ),
        ("slurmctld", ["slurmctld", "-i", "-f", str(conf)], folder / "slurmctld.pid"),
        *((f"slurmd {n}", ["slurmd", "-N", n, "-f", str(conf)], folder / f"slurmd-{n}.pid") for n in NODES),
    ]
    try:
        for name, cmd, pidfile in daemons:
            # Each daemon forks into the background and writes its pid file: that pid is what we stop.
            subprocess.run(cmd, env={**os.environ, **c.env}, check=True, capture_output=True, timeout=60)
            for _ in range(200):
                if pidfile.is_file() and pidfile.read_text().strip():
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{name} did not start:\n{c.logs()}")
            c.pids.append(int(pidfile.read_text().split()[0]))
        for _ in range(120):  # the nodes register and become idle
            state = c.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.split()
            if state == ["idle"] * len(NODES):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"node never became idle (state {state!r}):\n{c.logs()}")
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.run("scancel", "--full", "-u", "root", check=False)
        for pid in reversed(c.pids):
            _stop(pid)
