"""The names of the metrics the MLflow runs carry, defined once.

The stages log under these names; claims, the report, the registry and
results.py read them back. Plain strings, no imports: cheap for every layer.
"""

from __future__ import annotations

# training (per epoch, step = epoch) and its summary
TRAIN_LOSS, TRAIN_ACC, TRAIN_LR = "train/loss", "train/acc", "train/lr"
VAL_LOSS, VAL_ACC = "val/loss", "val/acc"
EPOCH_SECONDS = "time/epoch_s"
VAL_BEST_ACC = "val/best_acc"  # what model selection (the champion alias, sweeps) uses
TRAIN_SECONDS = "time/train_s"
# What a job cost: CPU-seconds of its process (every thread; time.process_time) while it trained or
# measured, and GPU-seconds (training seconds x GPUs) where it trained on GPUs.
TRAIN_CPU_SECONDS, TRAIN_GPU_SECONDS = "time/train_cpu_s", "time/train_gpu_s"
# The optimiser step whose loss was not finite, where optim.on_divergence=stop ended training there.
TRAIN_DIVERGED_STEP = "train/diverged_step"
JOB_CPU_SECONDS, JOB_SECONDS = "time/cpu_s", "time/job_s"  # a measuring stage's job (baselines, depth)
EPOCH_METRICS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC)
# The training loss as a curve over steps: the mean of each window of LOSS_EVERY steps (training/module.py),
# logged at the window's last step.
TRAIN_STEP_LOSS = "train/step_loss"
VAL_PGD_ACC = "val/pgd_acc"  # the catastrophic-overfitting guard's measure (robust_guard.py), when on

# evaluate stage: the test split reports, it never selects
TEST_ACC, TEST_LOSS, TEST_ECE = "test/acc", "test/loss", "test/ece"


def test_precision(digit) -> str:
    return f"test/precision_{digit}"


def test_recall(digit) -> str:
    return f"test/recall_{digit}"


def mechanics(key: str) -> str:
    """mechanics/<key> of the mechanics check (NumPy forward pass, initialisation, gradcheck, backward cost)."""
    return f"mechanics/{key}"


def init_gradient(key: str) -> str:
    """init_grad/<layerN|loss>: the untrained MLP's weight-gradient norm per layer, and its loss."""
    return f"init_grad/{key}"


def collapse(key: str) -> str:
    """collapse/<key> of the linear-stack check (layers, max_logit_diff, single_map_acc, ...)."""
    return f"collapse/{key}"


# robustness stage
ROBUST_CLEAN_ACC = "robust/clean_acc"
SHIFT_CLEAN_ECE = "shift/clean_ece"
MNIST_C_MEAN_ACC, MNIST_C_WORST_ACC, MNIST_C_MEAN_ECE = (
    "shift/mnist_c_mean_acc",
    "shift/mnist_c_worst_acc",
    "shift/mnist_c_mean_ece",
)


def attack_acc(attack: str, eps: float) -> str:
    """Accuracy under `attack` at `eps`, e.g. robust/pgd_acc_eps0.1."""
    return f"robust/{attack}_acc_eps{float(eps):g}"


def attack_curve(attack: str) -> str:
    """The accuracy-vs-eps curve of `attack` (step = eps x 100)."""
    return f"robust/{attack}_acc_curve"


def autoattack_acc(eps: float) -> str:
    return f"robust/autoattack_acc_eps{float(eps):g}"


def corruption_acc(name: str) -> str:
    return f"shift/{name}_acc"


def corruption_ece(name: str) -> str:
    return f"shift/{name}_ece"


def ood_auroc(kind: str) -> str:
    """AUROC of max-softmax scores, in-distribution vs `kind` (fashion_mnist, uniform_noise, ...)."""
    return f"ood/{kind}_auroc"


# -- what MLflow shows ----------------------------------------------------------------------------
# The MLflow UI's run page groups metric charts into sections by the name before the last '/'
# and lists the sections in code-point order (then the unprefixed "Model metrics"). Under their
# own names the per-epoch curves (train/, val/) came after collapse/, ood/, robust/, shift/ and
# test/; under curves/ they open the page. collapse/ (linear stacks only) would still sort first,
# so it moves beside the test numbers it explains. val/best_acc keeps its name: the champion and
# every stored run compare versions by it. Only tracking/ translates, on write and on read.
# The loss over steps gets a section of its own after the per-epoch curves: under curves/train/ its
# chart pushed curves/val off the first screen.
MLFLOW_PREFIXES = {"train/": "curves/train/", "val/": "curves/val/", "collapse/": "test/collapse/"}
MLFLOW_SAME = frozenset({VAL_BEST_ACC})
MLFLOW_RENAMED = {TRAIN_STEP_LOSS: "steps/train_loss"}


def mlflow_name(name: str) -> str:
    """The name MLflow shows for one of the project's metric names (train/loss -> curves/train/loss)."""
    if name in MLFLOW_SAME:
        return name
    if name in MLFLOW_RENAMED:
        return MLFLOW_RENAMED[name]
    for ours, shown in MLFLOW_PREFIXES.items():
        if name.startswith(ours):
            return shown + name[len(ours) :]
    return name


def project_name(name: str) -> str:
    """The project's name for a metric read back from MLflow (the inverse of `mlflow_name`)."""
    for ours, shown in MLFLOW_RENAMED.items():
        if name == shown:
            return ours
    for ours, shown in MLFLOW_PREFIXES.items():
        if name.startswith(shown):
            return ours + name[len(shown) :]
    return name
