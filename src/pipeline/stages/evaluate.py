"""Evaluate stage: test-set accuracy, loss, per-class precision/recall, confusion, calibration.

    python -m pipeline.stages.evaluate --params params.yaml              # the DVC stage
    python -m pipeline.stages.evaluate run_dir=outputs/runs/<a run>      # any earlier Hydra run

Reads <run_dir>/run.json and the best checkpoint; writes <run_dir>/metrics.json (the
headline figures DVC tracks: test accuracy, loss, ECE), <run_dir>/details/metrics.json
(those and per-class precision/recall, the model's size), <run_dir>/plots/{confusion,reliability}.csv
and figures/*.png, and logs all of it into the MLflow run that trained the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

if TYPE_CHECKING:
    import torch

# evaluate.init_gradients: the untrained network's gradients on the first training images, one batch.
INIT_GRADIENT_IMAGES = 512


def predict_logits(model, images, batch_size: int):
    """Logits for uint8 images (N, 28, 28), batched, without gradients."""
    import torch

    from pipeline.nn.images import to_model_input

    with torch.no_grad():
        return torch.cat([model(to_model_input(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])


def evaluate(cfg: DictConfig) -> dict:
    """The evaluate stage: compute the test-set results, then record them (files and the MLflow run)."""
    from pipeline.tracking import run_ref
    from pipeline.tracking.metric_journal import send_kept
    from pipeline.tracking.runs import recording
    from pipeline.tracking.system_metrics import system_metrics

    ref = run_ref.read(cfg.run_dir)
    # The run is open (and its system metrics sampled) while the model is evaluated, not only
    # while the results are written; a failed evaluation ends it FAILED.
    with recording(run_ref.run_of(ref)) as run, system_metrics(run, cfg.tracking):
        send_kept(cfg.run_dir)  # training metrics a tracking-server outage left in the run folder
        evaluation = compute(cfg, ref)
        record(cfg, run, evaluation)
    from pipeline.config.model_policy import model_policy

    if model_policy(cfg)[1]:  # registered by training: the best by validation gets @champion
        from pipeline.tracking.registry import after_evaluation

        after_evaluation(run.uri, cfg.tracking.registered_model)
    return evaluation.result


@dataclass
class Evaluation:
    """What the evaluate stage measured: details/metrics.json's content and the data behind its plots."""

    result: dict
    labels: list[int]
    predictions: list[int]
    confusion: object
    reliability: list[dict]
    model: object = field(repr=False)
    images: torch.Tensor = field(repr=False)


def compute(cfg: DictConfig, ref: dict) -> Evaluation:
    import torch.nn.functional as F

    from pipeline.data.mnist import load_split
    from pipeline.nn import calibration, collapse, mechanics, metrics
    from pipeline.nn.builders import load_checkpoint
    from pipeline.nn.init_gradients import layer_gradient_norms
    from pipeline.nn.models import MLP, count_parameters
    from pipeline.tracking.run_ref import best_checkpoint

    run_dir = Path(cfg.run_dir)
    checkpoint = best_checkpoint(run_dir, ref)
    model = load_checkpoint(checkpoint)
    images, labels = load_split(cfg.data.root, "test")
    print(f"[evaluate] {checkpoint} on {len(labels)} test images ...", flush=True)

    logits = predict_logits(model, images, cfg.evaluate.batch_size)
    probs = logits.softmax(1)
    preds = logits.argmax(1)
    confusion = metrics.confusion_matrix(preds, labels)
    precision, recall = metrics.precision_recall(confusion)
    bins = calibration.reliability_bins(probs, labels, cfg.evaluate.ece_bins)
    ece = calibration.expected_calibration_error(probs, labels, cfg.evaluate.ece_bins)
    bin_rows = [
        {"bin_lower": float(lo), "bin_upper": float(hi), "count": int(n), "confidence": float(c), "accuracy": float(a)}
        for lo, hi, n, c, a in zip(
            bins["lower"], bins["upper"], bins["count"], bins["confidence"], bins["accuracy"], strict=False
        )
        if n > 0
    ]
    result = {
        "test": {
            "acc": float((preds == labels).double().mean()),
            "loss": float(F.cross_entropy(logits, labels)),
            "ece": ece,
            "precision": {str(c): float(p) for c, p in enumerate(precision)},
            "recall": {str(c): float(r) for c, r in enumerate(recall)},
        },
        "model": {"name": cfg.model.name, "parameters": count_parameters(model)},
    }
    if collapse.is_linear_stack(model):
        # The identity-activation stack: multiply it out and check it is one linear map.
        result["collapse"] = collapse.compare(model, images, labels, cfg.evaluate.batch_size)
    if cfg.evaluate.get("mechanics") and mechanics.is_relu_mlp(model):
        result["mechanics"] = mechanics.measure(model, _fresh_model(cfg), images, labels)
    if cfg.evaluate.get("init_gradients") and isinstance(model, MLP):
        train_images, train_labels = load_split(cfg.data.root, "train")
        n = INIT_GRADIENT_IMAGES
        result["init_gradients"] = layer_gradient_norms(_fresh_model(cfg), train_images[:n], train_labels[:n])
    return Evaluation(result, labels.tolist(), preds.tolist(), confusion, bin_rows, model, images)


def _fresh_model(cfg: DictConfig):
    """The network as training found it: built from the config after seeding with the run's seed."""
    import torch

    from pipeline.nn.builders import build_model

    with torch.random.fork_rng():  # what runs after evaluate draws the numbers it drew before
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model)


def mlflow_metrics(result: dict) -> dict[str, float]:
    """details/metrics.json as the flat names the MLflow run carries (see metric_names.py)."""
    from pipeline.common import metric_names as names

    test = result["test"]
    flat = {names.TEST_ACC: test["acc"], names.TEST_LOSS: test["loss"], names.TEST_ECE: test["ece"]}
    flat.update({names.test_precision(c): v for c, v in test["precision"].items()})
    flat.update({names.test_recall(c): v for c, v in test["recall"].items()})
    flat.update({names.collapse(k): v for k, v in result.get("collapse", {}).items()})
    flat.update({names.mechanics(k): v for k, v in result.get("mechanics", {}).items()})
    flat.update({names.init_gradient(k): v for k, v in result.get("init_gradients", {}).items()})
    return flat


def record(cfg: DictConfig, run, evaluation: Evaluation) -> None:
    """Write metrics.json and its details, the plot data and figures, and log the same numbers into the model's run
    (open: `evaluate` records inside `recording`)."""
    from pipeline.common import atomic, headline, plots
    from pipeline.data.mnist import test_split_record
    from pipeline.nn import filters
    from pipeline.tracking.runs import EvalDataset

    run_dir = Path(cfg.run_dir)
    result = evaluation.result
    details_path, metrics_path = run_dir / headline.EVALUATION_DETAILS, run_dir / headline.EVALUATION_METRICS
    atomic.write_json(details_path, result)
    atomic.write_json(metrics_path, headline.evaluation_headline(result))
    plot_dir, fig_dir = run_dir / "plots", run_dir / "figures" / "evaluation"
    plots.write_csv(
        plot_dir / "confusion.csv",
        [{"actual": a, "predicted": p} for a, p in zip(evaluation.labels, evaluation.predictions, strict=False)],
    )
    plots.write_csv(plot_dir / "reliability.csv", evaluation.reliability)
    test = result["test"]
    figures = [
        plots.confusion_png(evaluation.confusion, fig_dir / "confusion.png"),
        plots.reliability_png(evaluation.reliability, test["ece"], fig_dir / "reliability.png"),
    ]
    figures += filters.write_figures(evaluation.model, evaluation.images, fig_dir)

    # The test split as the logged model's evaluation dataset, and its numbers as the model's metrics.
    model_id, test_set = run.logged_model_id(), EvalDataset(**test_split_record())
    run.log_evaluation_dataset(test_set, model_id)
    run.log_metrics(mlflow_metrics(result), model_id=model_id, dataset=test_set)
    run.log_artifact(details_path, "evaluation")  # every figure: evaluation/metrics.json
    for path in [*figures, plot_dir / "reliability.csv", plot_dir / "history.csv"]:
        if path.exists():
            run.log_artifact(path, "evaluation")
    if "collapse" in result:
        c = result["collapse"]
        print(
            f"[evaluate] linear stack of {c['layers']} layers = one 784x10 map: max logit difference "
            f"{c['max_logit_diff']:.2e}, same prediction on {c['prediction_agreement']:.2%}",
            flush=True,
        )
    if "mechanics" in result:
        m = result["mechanics"]
        print(
            f"[evaluate] NumPy forward pass: same prediction on {m['numpy_prediction_agreement']:.2%}; "
            f"at initialisation acc {m['init_acc']:.2%}, loss {m['init_loss']:.3f} (ln 10 = {m['ln10']:.3f}); "
            f"gradcheck {'passes' if m['gradcheck_all_fast'] and m['gradcheck_output_layer'] else 'FAILS'}; "
            f"backward {m['backward_over_forward']:.1f}x the forward pass, finite differences "
            f"{int(m['finite_difference_passes']):,} forward passes",
            flush=True,
        )
    if "init_gradients" in result:
        g = result["init_gradients"]
        norms = ", ".join(f"{v:.2e}" for k, v in g.items() if k.startswith("layer"))
        print(f"[evaluate] at initialisation: loss {g['loss']:.3f}, weight-gradient norm per layer {norms}", flush=True)
    print(
        f"[evaluate] test/acc={test['acc']:.4f} test/loss={test['loss']:.4f} test/ece={test['ece']:.4f}; "
        f"wrote {metrics_path}, {details_path}, {plot_dir}/, {fig_dir}/; logged to MLflow run {run.run_id}",
        flush=True,
    )


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main
    from pipeline.stages.reproducible import reproducibly

    stage_main("pipeline.stages.evaluate", reproducibly(evaluate), argv=argv)


if __name__ == "__main__":
    main()
