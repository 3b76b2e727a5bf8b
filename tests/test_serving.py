"""`mlflow models serve -m models:/mnist-mlp@champion`, as MLflow users serve the registered model: a
model trained by the pipeline answers real MNIST test digits sent as float64 and as uint8 JSON with the
right digit and probabilities that sum to 1, the same as the model in memory; a malformed request gets
a 400 naming the problem and the accepted forms, not a 500 with a traceback."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import _command_env, free_port, run_module, serving

PROBABILITIES = [f"p{k}" for k in range(10)]
N = 3  # the first test digits: 7, 2, 1


@pytest.fixture(scope="module")
def champion(tmp_path_factory, mnist_root):
    """A store whose mnist-mlp@champion the pipeline trained (10,000 images, one epoch) and registered."""
    tmp = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{tmp}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "data.train_subset=10000",
        "trainer.max_epochs=1",
        f"run_dir={tmp / 'run'}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        "tracking.register=true",
        cwd=tmp,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mnist-mlp@champion: none -> version 1" in out.stdout, out.stdout[-2000:]
    return tmp, uri


def _post(url: str, body: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_real_digits_and_refuses_malformed_requests(champion, mnist_root):
    import torch

    from pipeline.data.mnist import load_split
    from pipeline.tracking.registry import load_model

    tmp, uri = champion
    images, labels = load_split(mnist_root, "test")
    pixels, labels = images[:N].numpy(), labels[:N].tolist()
    with torch.no_grad():
        in_memory = torch.softmax(load_model("models:/mnist-mlp@champion", uri)(images[:N, None] / 255).double(), 1)

    port = free_port()
    mlflow = str(Path(sys.executable).parent / "mlflow")
    cmd = [mlflow, "models", "serve", "-m", "models:/mnist-mlp@champion", "--env-manager", "local"]
    cmd += ["-h", "127.0.0.1", "-p", str(port)]
    # The server starts uvicorn by name: the environment's bin folder goes first on PATH, as when activated.
    env = _command_env(
        {"MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    )
    url = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{url}/ping", cwd=tmp, env=env, log=tmp / "serve.log"):
        as_float64 = _post(f"{url}/invocations", json.dumps({"inputs": (pixels / 255).tolist()}))
        as_uint8 = _post(f"{url}/invocations", json.dumps({"inputs": pixels.reshape(N, 784).tolist()}))
        wrong_size = _post(f"{url}/invocations", json.dumps({"inputs": np.zeros((1, 27, 27)).tolist()}))
        as_bytes_in_floats = _post(f"{url}/invocations", json.dumps({"inputs": pixels.astype(float).tolist()}))

    for status, answer in (as_float64, as_uint8):
        assert status == 200, answer
        rows = answer["predictions"]
        assert [row["digit"] for row in rows] == labels == [7, 2, 1]
        served = np.array([[row[p] for p in PROBABILITIES] for row in rows])
        np.testing.assert_allclose(served.sum(1), 1.0, atol=1e-9)
        np.testing.assert_allclose(served, in_memory.numpy(), atol=1e-6)
        assert (served.argmax(1) == labels).all() and served.max(1).min() > 0.5
    status, refused = wrong_size
    assert status == 400 and refused["error_code"] == "INVALID_PARAMETER_VALUE", refused
    assert "images of shape (1, 27, 27) are not a batch of 28x28 images" in refused["message"]
    assert "shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784)" in refused["message"]
    assert "Traceback" not in json.dumps(refused) and "stack_trace" not in refused
    status, refused = as_bytes_in_floats
    assert status == 400 and refused["error_code"] == "INVALID_PARAMETER_VALUE", refused
    assert (
        "float pixels must lie in [0, 1]; these span [0, 255] (8-bit pixels: send them as integers"
        in (refused["message"])
    )
