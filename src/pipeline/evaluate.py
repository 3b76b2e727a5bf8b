"""Evaluate stage: test-set accuracy, loss, per-class precision/recall, confusion, calibration.

    python -m pipeline.evaluate --params params.yaml              # the DVC stage
    python -m pipeline.evaluate run_dir=outputs/runs/<a run>      # any earlier Hydra run

Reads <run_dir>/run.json and the best checkpoint; writes <run_dir>/metrics.json,
<run_dir>/plots/{confusion,reliability}.csv and figures/*.png, and logs all of
it into the MLflow run that trained the model.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def predict_logits(model, images, batch_size: int):
    """Logits for uint8 images (N, 28, 28), batched, without gradients."""
    import torch

    with torch.no_grad():
        return torch.cat([model(images[i:i + batch_size].unsqueeze(1).float().div(255))
                          for i in range(0, len(images), batch_size)])


def evaluate(cfg: DictConfig) -> dict:
    import torch.nn.functional as F

    from pipeline import atomic, calibration, collapse, filters, metrics, plots, tracking
    from pipeline.data import load_split
    from pipeline.models import count_parameters, load_checkpoint

    run_dir = Path(cfg.run_dir)
    ref = tracking.read_run_ref(run_dir)
    checkpoint = Path(ref.get("best_checkpoint") or run_dir / "checkpoints" / "best.ckpt")
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
    bin_rows = [{"bin_lower": float(lo), "bin_upper": float(hi), "count": int(n),
                 "confidence": float(c), "accuracy": float(a)}
                for lo, hi, n, c, a in zip(bins["lower"], bins["upper"], bins["count"], bins["confidence"],
                                           bins["accuracy"]) if n > 0]
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

    metrics_path = run_dir / "metrics.json"
    atomic.write_json(metrics_path, result)
    plot_dir, fig_dir = run_dir / "plots", run_dir / "figures" / "evaluation"
    plots.write_csv(plot_dir / "confusion.csv",
               [{"actual": int(a), "predicted": int(p)} for a, p in zip(labels.tolist(), preds.tolist())])
    plots.write_csv(plot_dir / "reliability.csv", bin_rows)
    figures = [plots.confusion_png(confusion, fig_dir / "confusion.png"),
               plots.reliability_png(bin_rows, ece, fig_dir / "reliability.png")]
    figures += filters.write_figures(model, images, fig_dir)

    uri, run_id = ref["tracking_uri"], ref["run_id"]
    test = result["test"]
    flat = {"test/acc": test["acc"], "test/loss": test["loss"], "test/ece": test["ece"]}
    flat.update({f"test/precision_{c}": v for c, v in test["precision"].items()})
    flat.update({f"test/recall_{c}": v for c, v in test["recall"].items()})
    flat.update({f"collapse/{k}": v for k, v in result.get("collapse", {}).items()})
    tracking.log_metrics(uri, run_id, flat)
    tracking.log_artifact(uri, run_id, metrics_path, "evaluation")
    for path in [*figures, plot_dir / "reliability.csv", plot_dir / "history.csv"]:
        if path.exists():
            tracking.log_artifact(uri, run_id, path, "evaluation")
    tracking.end_run(uri, run_id)
    if "collapse" in result:
        c = result["collapse"]
        print(f"[evaluate] linear stack of {c['layers']} layers = one 784x10 map: max logit difference "
              f"{c['max_logit_diff']:.2e}, same prediction on {c['prediction_agreement']:.2%}", flush=True)
    print(f"[evaluate] test/acc={test['acc']:.4f} test/loss={test['loss']:.4f} test/ece={ece:.4f}; "
          f"wrote {metrics_path}, {plot_dir}/, {fig_dir}/; logged to MLflow run {run_id}", flush=True)
    if cfg.tracking.get("log_model", False):  # registered by training: the best by test/acc gets @champion
        from pipeline.registry import after_evaluation

        after_evaluation(uri, cfg.tracking.registered_model)
    return result


def main(argv=None) -> None:
    from pipeline.config import stage_main

    stage_main("pipeline.evaluate", evaluate, argv=argv)


if __name__ == "__main__":
    main()
