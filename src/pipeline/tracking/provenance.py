"""Where a run came from, as tags: the commit and whether the code was dirty, the user and
program (MLflow's own tags), a readable run name, and the Hydra preset and sweep job."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Files DVC writes while `dvc repro` runs (the lock between stages, the parameters `dvc exp run -S`
# composes, the outputs stages track in git): their changes do not make the code dirty.
DVC_MANAGED = ("dvc.lock", "params.yaml")


def dvc_managed_paths(root: str | Path = ".") -> set[str]:
    """DVC_MANAGED plus every `outs`/`metrics`/`plots` path of dvc.yaml, with ${...} resolved from params.yaml."""
    import re

    import yaml

    root = Path(root)
    paths = set(DVC_MANAGED)
    try:
        stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})
        params = yaml.safe_load((root / "params.yaml").read_text()) or {} if (root / "params.yaml").is_file() else {}
    except (OSError, yaml.YAMLError):
        return paths

    def resolve(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            node = params
            for part in match.group(1).split("."):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            return str(node) if node != {} else match.group(0)

        return re.sub(r"\$\{([^}]+)\}", value, text)

    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key, []) or []:
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                paths.add(resolve(str(path)).rstrip("/"))
    return paths


def _is_dvc_managed(path: str, managed: set[str]) -> bool:
    return any(path == m or path.startswith(m + "/") for m in managed)


def git_state() -> dict[str, str]:
    """The commit the code came from, as MLflow's own tags and ours; `git.dirty` ignores files DVC manages."""

    def git(*args: str, strip: bool = True) -> str:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.strip() if strip else out

    # The working directory's repository (DVC's queue runs in copies of it), else the one this code lives in.
    top = git("rev-parse", "--show-toplevel") or git("-C", str(Path(__file__).parent), "rev-parse", "--show-toplevel")
    commit = git("-C", top, "rev-parse", "HEAD") if top else ""
    if not commit:
        return {"git.commit": "unknown", "git.dirty": "false"}
    managed = dvc_managed_paths(top)
    # -z: paths verbatim (no quoting); each entry is "XY path" (renames add the old path after a NUL).
    changed = [
        entry[3:]
        for entry in git("-C", top, "status", "--porcelain", "-z", "--untracked-files=no", strip=False).split("\0")
        if len(entry) > 3
    ]
    dirty = any(not _is_dvc_managed(p, managed) for p in changed)
    tags = {"git.commit": commit, "git.dirty": str(dirty).lower(), "mlflow.source.git.commit": commit}
    branch = git("-C", top, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    return tags


def system_tags(command: str) -> dict[str, str]:
    """The tags MLflow's own fluent API sets on a run (the UI's User and Source columns)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    # The UI's Source column shows the last path component of the name: the program, without its
    # arguments (paths among them would show as "mlflow.db ..."); the full command is in the description.
    program = []
    for word in command.split("  #")[0].split():
        if "=" in word or "/" in word:
            break
        program.append(word)
    return {
        "mlflow.user": user,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": " ".join(program)[:500] or "pipeline",
    }


def run_name(cfg: DictConfig) -> str:
    """Readable in the UI's run list: model, its key settings, optimiser, time."""
    m = cfg.model
    if m.arch == "mlp":
        shape = f"{'x'.join(str(h) for h in m.hidden)}-{m.activation}"
    else:
        shape = "c" + "x".join(str(c) for c in m.channels)
    adversarial = cfg.get("adversarial", {}).get("method", "none")
    if adversarial != "none":
        shape += f"-adv{adversarial}{cfg.adversarial.eps:g}"
    return f"{m.name}-{shape}-{cfg.optim.name}{cfg.optim.lr:g}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def hydra_tags() -> dict[str, str]:
    """The `experiment=<preset>` of the running Hydra app and, in a sweep, the job's number."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    tags = {}
    if hydra_cfg.runtime.choices.get("experiment"):
        tags["preset"] = hydra_cfg.runtime.choices["experiment"]
    if hydra_cfg.mode == RunMode.MULTIRUN:
        tags["sweep.job"] = str(hydra_cfg.job.num)
    return tags
