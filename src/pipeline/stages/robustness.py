"""Robustness stage: adversarial attacks, MNIST-C corruptions, severity sweeps, out-of-distribution inputs.

    python -m pipeline.stages.robustness --params params.yaml                 # the DVC stage
    python -m pipeline.stages.robustness run_dir=outputs/runs/<a run>         # any trained run
    python -m pipeline.stages.robustness run_dir=... robustness=quick         # small subsets

Reads <run_dir>/run.json and the best checkpoint. Writes <run_dir>/robustness.json
(DVC metrics: PGD accuracy at the headline radii), every figure in <run_dir>/details/robustness.json,
curves under <run_dir>/plots/robustness/ (DVC plots), figures under
<run_dir>/figures/robustness/, and logs everything into the model's MLflow run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from pipeline.robustness.summary import AutoAttackPoint, Robustness


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_fashion(r: DictConfig):
    """The published Fashion-MNIST test images, from a given folder, Debian's package or torchvision's
    download; anything else is refused (exit status 2) before any output is written."""
    from pipeline.robustness.ood import FASHION_TEST_IMAGES_SHA256, is_published_fashion_test

    images, source = _find_fashion(r)
    if not is_published_fashion_test(images):
        print(
            f"error: the Fashion-MNIST test images from {source} are not the published ones (sha256 of the "
            f"uint8 array should be {FASHION_TEST_IMAGES_SHA256}): OOD results would not be comparable. Point "
            "robustness.ood.fashion_dir at the official t10k files or install Debian's dataset-fashion-mnist.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return images, source


def _find_fashion(r: DictConfig):
    from pipeline.robustness.ood import DEBIAN_FASHION_MNIST_DIR, load_fashion_mnist_test

    if r.ood.fashion_dir:
        return load_fashion_mnist_test(r.ood.fashion_dir), f"folder {r.ood.fashion_dir}"
    if DEBIAN_FASHION_MNIST_DIR.is_dir():
        return load_fashion_mnist_test(), f"Debian package ({DEBIAN_FASHION_MNIST_DIR})"
    try:
        from torchvision.datasets import FashionMNIST

        return FashionMNIST("data/fashion-mnist", train=False, download=True).data, "torchvision mirrors"
    except Exception as err:
        raise RuntimeError(
            "Fashion-MNIST is needed for the out-of-distribution test and was not found: "
            f"torchvision's mirrors failed ({err}). Install Debian's package "
            "(`apt-get install dataset-fashion-mnist`) or set robustness.ood.fashion_dir=<folder of IDX files>."
        ) from err


def evaluate_robustness(cfg: DictConfig) -> dict:
    """The robustness stage: compute every measurement, then record them (files and the MLflow run)."""
    from pipeline.tracking import run_ref

    ref = run_ref.read(cfg.run_dir)
    measured = compute(cfg, ref)
    record(cfg, run_ref.run_of(ref), measured)
    return measured.to_json()


def compute(cfg: DictConfig, ref: dict) -> Robustness:
    import torch

    from pipeline.data.mnist import load_split
    from pipeline.nn.builders import load_checkpoint
    from pipeline.nn.images import to_model_input
    from pipeline.robustness import measures
    from pipeline.tracking.run_ref import best_checkpoint

    r = cfg.robustness
    run_dir = Path(cfg.run_dir)
    device = _device(r.device)
    model = load_checkpoint(best_checkpoint(run_dir, ref)).to(device)
    images, labels = load_split(cfg.data.root, "test")
    if r.n_images:
        # A fixed, seeded subset, the same for every model, so results compare.
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(r.seed))[: r.n_images]
        images, labels = images[pick], labels[pick]
    x = to_model_input(images).to(device)
    y = labels.to(device)
    measures.log(f"profile {r.profile}: {len(y)} test images on {device}")

    attacks = tuple(r.attacks)
    pgd = {"steps": r.pgd.steps, "step_size": r.pgd.step_size, "random_start": r.pgd.random_start}
    clean_acc, clean_ece = measures.accuracy_and_ece(model, x, y, r.batch_size)
    curve = measures.adversarial_curves(
        model,
        x,
        y,
        eps=list(r.eps),
        attacks=attacks,
        pgd_options={**pgd, "restarts": r.pgd.restarts},
        batch_size=r.batch_size,
        seed=r.seed,
    )
    auto = (
        measures.autoattack_results(
            model, x, y, list(r.autoattack.eps), r.autoattack.n_images, r.autoattack.version, r.seed, device
        )
        if r.autoattack.n_images
        else {}
    )
    if r.get("mnist_c_dir"):
        corruptions = measures.official_corruption_table(
            model, r.mnist_c_dir, list(r.corruptions), r.batch_size, device
        )
    else:
        corruptions = measures.corruption_table(model, x, y, list(r.corruptions), r.batch_size, r.seed)
    grids = {name: list(grid) for name, grid in r.severity.items()}
    severity = measures.severity_curves(model, x, y, grids, r.batch_size, r.seed)
    fashion, source = load_fashion(r)
    if r.ood.n_images:
        fashion = fashion[: r.ood.n_images]
    ood = measures.ood_scores(model, x, fashion, source, list(r.ood.noise), r.batch_size, r.seed)

    return Robustness(
        profile=r.profile,
        images=len(y),
        clean_acc=clean_acc,
        clean_ece=clean_ece,
        attacks=attacks,
        curve=curve,
        autoattack=[AutoAttackPoint(eps, acc) for eps, acc in auto.items()],
        corruptions=corruptions,
        severity=severity,
        ood_auroc=ood,
        adversarial_examples=measures.adversarial_examples(model, x, y, r.examples, float(max(r.eps)), pgd, r.seed),
        corruption_examples=measures.corruption_examples(x[:1].cpu(), list(r.corruptions), r.seed),
    )


def evaluation_datasets(cfg: DictConfig) -> dict:
    """The data each group of numbers was measured on, keyed as eval_datasets.dataset_key names them."""
    from pipeline.data.mnist import test_split_record
    from pipeline.robustness.eval_datasets import fashion_record, mnist_c_record
    from pipeline.tracking.runs import EvalDataset

    r = cfg.robustness
    test = test_split_record(r.n_images, r.seed)
    return {
        "test": EvalDataset(**test),
        "mnist_c": EvalDataset(**mnist_c_record(test, list(r.corruptions), r.get("mnist_c_dir"))),
        "fashion": EvalDataset(**fashion_record(r.ood.n_images)),
    }


def record(cfg: DictConfig, run, m: Robustness) -> None:
    """Write robustness.json and its details, the curves and figures, and log the same numbers into the model's run."""
    from pipeline.common import atomic, headline, plots
    from pipeline.robustness.eval_datasets import dataset_key
    from pipeline.robustness.measures import log
    from pipeline.robustness.summary import curve_rows
    from pipeline.tracking.runs import recording

    run_dir = Path(cfg.run_dir)
    result, severity = m.to_json(), m.severity
    out_json, details_json = run_dir / headline.ROBUSTNESS_METRICS, run_dir / headline.ROBUSTNESS_DETAILS
    atomic.write_json(details_json, result)
    atomic.write_json(out_json, headline.robustness_headline(result))
    plot_dir, fig_dir = run_dir / "plots" / "robustness", run_dir / "figures" / "robustness"
    files = [
        plots.write_csv(plot_dir / "adversarial.csv", curve_rows(m.curve)),
        plots.write_csv(plot_dir / "corruptions.csv", m.corruptions),
    ]
    files += [plots.write_csv(plot_dir / "severity" / f"{name}.csv", rows) for name, rows in severity.items()]
    by_attack = {a: [p for p in m.curve if p.attack == a] for a in m.attacks}
    files += [
        plots.adversarial_examples_png(*m.adversarial_examples, fig_dir / "adversarial_examples.png"),
        plots.curves_png(
            {a: ([p.eps for p in points], [p.acc for p in points]) for a, points in by_attack.items()},
            "eps (L-inf, pixel scale)",
            fig_dir / "accuracy_vs_eps.png",
            "Accuracy under attack",
        ),
        plots.curves_png(
            {n: ([row["severity"] for row in rows], [row["accuracy"] for row in rows]) for n, rows in severity.items()},
            "severity",
            fig_dir / "accuracy_vs_severity.png",
            "Accuracy under distribution shift",
            panels=True,
        ),
        plots.corruption_examples_png(m.corruption_examples, fig_dir / "corruptions.png"),
    ]

    with recording(run):
        model_id, datasets = run.logged_model_id(), evaluation_datasets(cfg)
        for dataset in datasets.values():
            run.log_evaluation_dataset(dataset, model_id)
        by_dataset: dict[str, dict[str, float]] = {key: {} for key in datasets}
        for name, value in m.mlflow_metrics().items():
            by_dataset[dataset_key(name)][name] = value
        for key, metrics in by_dataset.items():  # the model's metrics too (the Models view), each with its data
            run.log_metrics(metrics, model_id=model_id, dataset=datasets[key])
        for name, value, step in m.curve_metrics():  # the curve as a chart in the UI: step = eps x 100
            run.log_metrics({name: value}, step=step, model_id=model_id, dataset=datasets["test"])
        run.set_tags({"robustness.profile": m.profile, "shift.worst_corruption": result["mnist_c"]["worst"]})
        run.log_artifact(details_json, "robustness")  # every figure: robustness/robustness.json
        for path in files:
            run.log_artifact(path, "robustness")
    auto, ood, mc = result["autoattack"], result["ood_auroc"], result["mnist_c"]
    log(
        f"clean {result['clean']['acc']:.4f} | "
        + " ".join(f"{k} {v:.4f}" for k, v in result["adversarial"].items())
        + (" | AutoAttack " + " ".join(f"{k} {v:.4f}" for k, v in auto.items()) if auto else "")
        + f" | MNIST-C mean {mc['mean_acc']:.4f}, worst {mc['worst']} "
        f"{mc['worst_acc']:.4f} | Fashion-MNIST AUROC {ood['fashion_mnist']:.4f}"
    )
    log(f"wrote {out_json}, {details_json}, {plot_dir}/, {fig_dir}/; logged to MLflow run {run.run_id}")


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main
    from pipeline.stages.reproducible import reproducibly

    stage_main("pipeline.stages.robustness", reproducibly(evaluate_robustness), argv=argv)


if __name__ == "__main__":
    main()
