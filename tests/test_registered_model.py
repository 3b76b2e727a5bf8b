"""The registered model format: weights + config, no pickled code; `registry.load_model` gives back an
ordinary nn.Module that IBM ART attacks as it is, and MLflow's pyfunc answers the digit and the softmax
of the same logits, described by the model's signature."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

N_TRAIN, N_TEST = 5000, 300


@pytest.fixture(scope="module")
def registered(tmp_path_factory, mnist_root):
    """An MLP trained briefly on real MNIST, logged to a fresh SQLite store, registered, and made champion."""
    from pipeline.config.settings import compose
    from pipeline.data.mnist import load_split
    from pipeline.nn.builders import build_model
    from pipeline.tracking.client import client
    from pipeline.tracking.registry import update_champion
    from pipeline.tracking.runs import Run, experiment_id

    tmp = tmp_path_factory.mktemp("registered")
    uri = f"sqlite:///{tmp}/mlflow.db"
    model_cfg = OmegaConf.to_container(compose().model, resolve=True)
    torch.manual_seed(0)
    model = build_model(model_cfg)
    images, labels = load_split(mnist_root, "train")
    x, y = images[:N_TRAIN].float().unsqueeze(1) / 255, labels[:N_TRAIN]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        for i in range(0, N_TRAIN, 100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i : i + 100]), y[i : i + 100]).backward()
            opt.step()
    model.eval()
    test_images, test_labels = load_split(mnist_root, "test")
    xt, yt = test_images[:N_TEST].float().unsqueeze(1) / 255, test_labels[:N_TEST]
    with torch.no_grad():
        logits = model(xt)
    c = client(uri)
    run = Run(uri, c.create_run(experiment_id(c, "mnist", uri)).info.run_id)
    version = run.log_model(model, model_cfg, "mnist-mlp")
    xv, yv = images[N_TRAIN : N_TRAIN + N_TEST].float().unsqueeze(1) / 255, labels[N_TRAIN : N_TRAIN + N_TEST]
    with torch.no_grad():
        val_acc = float((model(xv).argmax(1) == yv).float().mean())
    run.log_metrics({"val/best_acc": val_acc})  # what the champion is chosen by
    assert update_champion(uri, "mnist-mlp") is not None
    return uri, run.run_id, version, xt, yt, logits


@pytest.mark.slow
def test_champion_loads_as_an_ordinary_module_with_the_same_outputs(registered):
    from pipeline.tracking.registry import load_model

    uri, _, version, xt, _, logits = registered
    assert version == "1"
    model = load_model("models:/mnist-mlp@champion", uri)
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.train() is model and model.training  # mode switches work (a torch.export program refuses)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(xt), logits, atol=1e-5)
    assert all(p.requires_grad for p in model.parameters())


def test_logged_folder_holds_no_pickle_and_explicit_requirements(registered, tmp_path):
    from importlib.metadata import version

    from pipeline.tracking.models import download_model

    uri, run_id, _, _, _, _ = registered
    folder = download_model(uri, f"runs:/{run_id}/model", tmp_path)
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    assert {"MLmodel", "weights.pt", "model.json", "requirements.txt"} <= names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".cloudpickle"))]
    requirements = (folder / "requirements.txt").read_text().split()
    assert f"torch=={version('torch')}" in requirements and f"mlflow=={version('mlflow')}" in requirements


def test_mlflow_pyfunc_answers_the_digit_and_the_softmax_of_the_same_logits(registered):
    """float32 (N, 1, 28, 28) in [0, 1] and the same images as uint8 (N, 784) in [0, 255] get one answer."""
    import mlflow.pyfunc

    from pipeline.nn.packaged import PROBABILITIES
    from pipeline.tracking.models import fluent_store

    uri, _, _, xt, _, logits = registered
    pixels = (xt * 255).round().to(torch.uint8).reshape(len(xt), 784).numpy()  # the test set's own bytes
    with fluent_store(uri):  # as a user would set it, without leaving it set for other tests
        model = mlflow.pyfunc.load_model("models:/mnist-mlp@champion")
        served, served_bytes = model.predict(xt.numpy()), model.predict(pixels)
    assert list(served.columns) == ["digit", *PROBABILITIES] and len(served) == len(xt)
    probabilities = torch.tensor(served[list(PROBABILITIES)].to_numpy())
    assert torch.allclose(probabilities, torch.softmax(logits.double(), 1), atol=1e-5)
    assert torch.allclose(probabilities.sum(1), torch.ones(len(xt), dtype=torch.float64))
    assert (served["digit"].to_numpy() == logits.argmax(1).numpy()).all()
    assert served_bytes.equals(served)


def test_signature_describes_the_answer_and_the_logged_example_serves(registered, tmp_path):
    """Checked with MLflow's own API: the signature names the outputs; `mlflow.models.predict`, which
    parses a request as the server does, answers the serving example stored with the model, and the
    same digits as float64 and as uint8 requests."""
    import json

    import numpy as np
    from mlflow.models import convert_input_example_to_serving_input, get_model_info, predict

    from pipeline.nn.packaged import PROBABILITIES
    from pipeline.tracking.models import download_model, fluent_store

    uri, _, _, xt, _, logits = registered
    folder = download_model(uri, "models:/mnist-mlp@champion", tmp_path / "model")
    with fluent_store(uri):
        signature = get_model_info("models:/mnist-mlp@champion").signature

    def served(request: Path) -> list[dict]:
        answer = tmp_path / f"{request.stem}.answer.json"
        predict(str(folder), input_path=str(request), output_path=str(answer), env_manager="local")
        return json.loads(answer.read_text())["predictions"]

    requests = {"float64": xt[:3].numpy().astype(np.float64), "uint8": (xt[:3] * 255).round().to(torch.uint8).numpy()}
    for name, images in requests.items():
        (tmp_path / f"{name}.json").write_text(convert_input_example_to_serving_input(images) or "")
    assert signature.inputs is None  # image_input checks them: one declared dtype and rank would refuse the others
    assert signature.outputs.input_names() == ["digit", *PROBABILITIES]
    assert [t.to_numpy() for t in signature.outputs.input_types()] == [np.int64] + [np.float64] * 10
    example = folder / "serving_input_example.json"
    assert np.asarray(json.loads(example.read_text())["inputs"]).shape == (1, 1, 28, 28)
    assert list(served(example)[0]) == ["digit", *PROBABILITIES]
    as_float64, as_uint8 = served(tmp_path / "float64.json"), served(tmp_path / "uint8.json")
    assert [row["digit"] for row in as_float64] == logits[:3].argmax(1).tolist()
    np.testing.assert_allclose([list(r.values()) for r in as_uint8], [list(r.values()) for r in as_float64])


@pytest.mark.parametrize("loader", ["pipeline.nn.packaged", "pipeline.packaged_model"])
def test_versions_logged_with_an_earlier_loader_name_still_load_and_answer_digits(registered, tmp_path, loader):
    """A model whose MLmodel names a loader module of earlier releases, logged as they did it (float32
    tensor signature): the registry still gives the nn.Module, and MLflow's pyfunc the digits."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from pipeline.config.settings import compose
    from pipeline.nn import packaged
    from pipeline.tracking.client import client
    from pipeline.tracking.models import fluent_store
    from pipeline.tracking.registry import load_model
    from pipeline.tracking.runs import experiment_id

    uri, run_id, _, xt, _, logits = registered
    model_cfg = OmegaConf.to_container(compose().model, resolve=True)
    data = packaged.save(load_model(f"runs:/{run_id}/model", uri), model_cfg, tmp_path / "weights")
    c = client(uri)
    earlier = c.create_run(experiment_id(c, "mnist", uri)).info.run_id
    with fluent_store(uri), mlflow.start_run(run_id=earlier):
        signature = infer_signature(xt.numpy(), logits.numpy())
        mlflow.pyfunc.log_model(  # requirements given, as earlier releases did: no inference subprocess
            name="model",
            loader_module=loader,
            data_path=str(data),
            signature=signature,
            pip_requirements=["torch"],
            input_example=xt[:2].numpy(),
        )
    with torch.no_grad():
        assert torch.allclose(load_model(f"runs:/{earlier}/model", uri)(xt), logits, atol=1e-5)
    with fluent_store(uri):
        served = mlflow.pyfunc.load_model(f"runs:/{earlier}/model").predict(xt.numpy())
    assert (served["digit"].to_numpy() == logits.argmax(1).numpy()).all()


@pytest.mark.slow
def test_art_pgd_attacks_the_loaded_champion(registered):
    """IBM ART's PGD on the registry's nn.Module, unwrapped: perturbations stay within eps, and they work."""
    pytest.importorskip("art", reason="adversarial-robustness-toolbox is a test extra")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    from pipeline.tracking.registry import load_model

    uri, _, _, xt, yt, _ = registered
    model = load_model("models:/mnist-mlp@champion", uri)
    classifier = PyTorchClassifier(
        model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0)
    )
    eps = 0.1
    attack = ProjectedGradientDescent(
        classifier, norm="inf", eps=eps, eps_step=0.01, max_iter=20, num_random_init=0, batch_size=N_TEST, verbose=False
    )
    x = xt.numpy()
    x_adv = attack.generate(x=x)
    clean = (classifier.predict(x).argmax(1) == yt.numpy()).mean()
    adversarial = (classifier.predict(x_adv).argmax(1) == yt.numpy()).mean()
    assert abs(x_adv - x).max() <= eps + 1e-6 and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert clean >= 0.85, clean
    assert adversarial <= clean - 0.3, (clean, adversarial)  # an undefended MLP at eps=0.1 collapses
