"""Browse and compare runs: the MLflow UI on the project's store, on loopback.

    python -m pipeline.stages.ui                      # http://127.0.0.1:5000, the project's mlflow.db
    python -m pipeline.stages.ui --port 5001
    python -m pipeline.stages.ui --tracking-uri sqlite:////path/to/mlflow.db
    python -m pipeline.stages.ui --host 0.0.0.0 --basic-auth   # other machines, with log-in (docs/team-setup.md)

The store is the pipeline's own (`pipeline.tracking.client.resolve_uri`): `--tracking-uri`,
else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db, with artifacts read from
<cwd>/mlartifacts. The server binds 127.0.0.1 unless `--host` says otherwise, so
nothing on the network can reach it by default. When the store already is a
tracking server (http:// or https://) there is nothing to start: the URL is printed.

No heavy imports: `--help` answers at once; the UI itself is `mlflow server`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.stages.ui",
        description="Start the MLflow UI on the project's tracking store (127.0.0.1 only unless --host is given).",
    )
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default: 127.0.0.1, this machine only). Anything else exposes the "
        "UI and its REST API to the network: use --basic-auth and/or a TLS reverse proxy.",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="store to browse (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db)",
    )
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default: 2)")
    p.add_argument(
        "--basic-auth",
        action="store_true",
        help="require a user name and password (MLflow's basic-auth app; docs/team-setup.md)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the server command instead of running it")
    return p.parse_args(argv)


def server_command(uri: str, host: str, port: int, workers: int = 2, basic_auth: bool = False) -> list[str]:
    """The `mlflow server` command line that serves `uri` (a database store) on host:port."""
    from pipeline.tracking.client import artifact_location

    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    artifacts = artifact_location(uri)
    if artifacts:
        # Experiments the pipeline created already name <store>/mlartifacts; new ones go there too.
        cmd += ["--default-artifact-root", artifacts, "--no-serve-artifacts"]
    if basic_auth:
        cmd += ["--app-name", "basic-auth"]
    return cmd


def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `mlflow server` runs in: no usage reports, and no GenAI job runner unless asked.

    MLflow 3's server starts a job runner for GenAI work (judges, trace roll-ups) by default: seven
    helper processes, each importing MLflow (about 3 s of CPU apiece on a 2-core machine) to serve
    jobs this project never submits; without them the UI answers in 6.4 s instead of 7.8 s here and
    leaves the cores free. MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true in the environment turns it back on.
    """
    env = dict(os.environ if base is None else base)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


# The MLflow 3 UI shows GenAI pages (traces) or model-training pages by a switch at its top left,
# stored per browser (GenAI until someone flips it); a link can choose for itself.
TRAINING_VIEW = "workflowType=machine_learning"


def training_runs_link(base: str, uri: str, experiment: str = "mnist") -> str:
    """A link that opens `experiment` on its list of training runs (its id read from a SQLite store)."""
    import sqlite3

    found = None
    if uri.startswith("sqlite:///"):
        try:
            with contextlib.closing(sqlite3.connect(f"file:{uri[len('sqlite:///') :]}?mode=ro", uri=True)) as db:
                found = db.execute(
                    "SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'", (experiment,)
                ).fetchone()
        except sqlite3.Error:  # no such table yet: an empty store
            found = None
    if found:
        return f"{base}/#/experiments/{found[0]}/runs?{TRAINING_VIEW}"
    return f"{base}/#/experiments?{TRAINING_VIEW}"


def main(argv=None) -> int:
    args = parse_args(argv)
    from pipeline.tracking.client import resolve_uri

    uri = resolve_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://", "databricks")):
        print(f"The store is a tracking server already: open {uri} in a browser (nothing to start).")
        return 0
    if uri.startswith("sqlite:///") and not args.dry_run:
        db = uri[len("sqlite:///") :]
        if not os.path.isfile(db):
            print(
                f"error: {db} does not exist yet: run the pipeline first (`dvc repro` or "
                f"`python -m pipeline.stages.train`), or pass --tracking-uri.",
                file=sys.stderr,
            )
            return 2
    from pipeline.tracking.client import check_store

    check_store(uri)  # a damaged store stops here, with the commands that recover it
    cmd = server_command(uri, args.host, args.port, args.workers, args.basic_auth)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if args.host not in LOOPBACK:
        print(
            f"warning: binding {args.host}: the UI and its REST API (read AND write) are reachable from the "
            f"network{'' if args.basic_auth else ' without any log-in'}. Prefer 127.0.0.1 with an SSH tunnel, "
            f"or --basic-auth behind a TLS reverse proxy (docs/team-setup.md).",
            file=sys.stderr,
        )
        if args.host in ("0.0.0.0", "::"):
            shown = "127.0.0.1"
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    env = server_env()
    if args.basic_auth:
        try:
            import flask_wtf  # noqa: F401  (MLflow's auth app needs it for CSRF protection)
        except ImportError:
            print("error: --basic-auth needs MLflow's auth extra: pip install 'mlflow[auth]'", file=sys.stderr)
            return 2
        if not (env.get("MLFLOW_AUTH_ADMIN_PASSWORD") or env.get("MLFLOW_AUTH_CONFIG_PATH")):
            print(
                "error: --basic-auth needs the admin's password the first time: set MLFLOW_AUTH_ADMIN_PASSWORD "
                "(or MLFLOW_AUTH_CONFIG_PATH to a basic_auth.ini); MLflow ships no default.",
                file=sys.stderr,
            )
            return 2
        if not env.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
            import secrets

            # CSRF tokens are signed with it; a fresh one per start only logs browsers out on restart.
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(32)
            print(
                "note: MLFLOW_FLASK_SERVER_SECRET_KEY not set; using a random one for this server "
                "(set it to keep sessions across restarts or share it between servers)",
                file=sys.stderr,
            )
        print(
            "log-in required: users and permissions live in basic_auth.db in this folder (MLflow's basic-auth app)",
            file=sys.stderr,
        )
    base = f"http://{shown}:{args.port}"
    print(
        f"MLflow UI for {uri}\n  open {base}  (experiment 'mnist'); Ctrl-C stops it\n"
        f"  the training runs: {training_runs_link(base, uri)}",
        flush=True,
    )
    os.execve(sys.executable, cmd, env)  # the server replaces this process: signals reach it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
