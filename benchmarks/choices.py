"""The measurements behind the speed choices, one training step (forward, backward, optimiser) at a time.

    channels_last   CNN step, NHWC (conf/model/cnn.yaml) vs NCHW; same logits to float tolerance
    fused           Adam (MLP) / AdamW (CNN) default vs fused=True; same weights after the steps
    torch.compile   eager (ours) vs torch.compile(model) (default mode); compile time reported apart,
                    and a failure to compile is reported as the result
    bf16            fp32 (ours) vs bf16 autocast on the CPU; bf16 is not exact, so the logits'
                    difference and the agreement of predictions are reported instead

ours is always the choice the project made; ratio = ours / baseline in ms per step, so <= 1 means the
choice is at least as fast. Batch 128, the default; repeats interleaved; median.
"""

from __future__ import annotations

import contextlib
import copy
import time

import torch
import torch.nn.functional as F

from benchmarks.common import data_root, median, row, skipped

BATCH = 128


def _model(arch: str, channels_last: bool = False) -> torch.nn.Module:
    from pipeline.config.settings import compose
    from pipeline.nn.builders import build_model

    torch.manual_seed(0)
    model = build_model(compose([f"model={arch}"]).model)
    return model.to(memory_format=torch.channels_last) if channels_last else model


class Stepper:
    """A model, its optimiser and a fixed batch; step_ms() times `steps` training steps."""

    def __init__(self, model, optimizer: str = "adam", fused: bool | None = None, bf16: bool = False):
        self.model = model
        opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer]
        self.opt = opt(model.parameters(), lr=1e-3, fused=fused)
        self.bf16, self.steps = bf16, 0
        g = torch.Generator().manual_seed(1)
        self.x = torch.rand(BATCH, 1, 28, 28, generator=g)
        self.y = torch.randint(0, 10, (BATCH,), generator=g)

    def step(self) -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        self.model.train()
        torch.manual_seed(self.steps)  # step n draws the same dropout mask in every variant
        self.steps += 1
        with ctx:
            loss = F.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def step_ms(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - start) / steps * 1000


def compare(ours: Stepper, base: Stepper, steps: int, warmup: int, repeats: int) -> tuple[float, float, dict]:
    for s in (ours, base):
        for _ in range(warmup):
            s.step()
    a, b = [], []
    for _ in range(repeats):  # interleaved
        a.append(ours.step_ms(steps))
        b.append(base.step_ms(steps))
    return median(a), median(b), {"samples_ours": a, "samples_baseline": b}


def _max_diff(m1, m2, x) -> float:
    with torch.no_grad():
        return float((m1.eval()(x) - m2.eval()(x)).abs().max())


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    steps = {"mlp": 5, "cnn": 2} if quick else {"mlp": 50, "cnn": 15}
    warmup, repeats = (1, 1) if quick else (3, repeats)
    probe = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    rows = []

    # channels_last: the same weights in both layouts.
    nchw = _model("cnn")
    nhwc = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    diff = _max_diff(nhwc, nchw, probe)
    a, b, s = compare(Stepper(nhwc, "adamw"), Stepper(nchw, "adamw"), steps["cnn"], warmup, repeats)
    rows.append(
        row(
            "choices",
            "CNN step, channels_last vs NCHW",
            a,
            b,
            "ms",
            ("<=", 1.0, "ratio"),
            note=f"max logit diff {diff:.1e}",
            same_logits=diff < 1e-4,
            max_logit_diff=diff,
            **s,
        )
    )

    # fused optimisers: the default (for-loop on CPU) vs fused=True, from the same weights.
    for arch, opt in (("mlp", "adam"), ("cnn", "adamw")):
        m = _model(arch, channels_last=arch == "cnn")
        # Neutrality: one step from the same weights on the same batch gives the same update. (After
        # many steps Adam amplifies rounding differences, so later weights are no fair test.)
        one, two = Stepper(copy.deepcopy(m), opt), Stepper(copy.deepcopy(m), opt, fused=True)
        one.step()
        two.step()
        with torch.no_grad():
            dw = max(
                float((p - q).abs().max()) for p, q in zip(one.model.parameters(), two.model.parameters(), strict=False)
            )
        a, b, s = compare(
            Stepper(copy.deepcopy(m), opt), Stepper(copy.deepcopy(m), opt, fused=True), steps[arch], warmup, repeats
        )
        rows.append(
            row(
                "choices",
                f"{arch.upper()} step, {opt} default vs fused=True",
                a,
                b,
                "ms",
                ("<=", 1.05, "ratio"),
                note=f"one step: max weight diff {dw:.1e}",
                same_weights=dw < 1e-6,
                max_weight_diff=dw,
                **s,
            )
        )

    # torch.compile (default mode) vs eager.
    for arch in ("mlp", "cnn"):
        if quick:
            rows.append(skipped("choices", f"{arch.upper()} step, eager vs torch.compile", "full size only"))
            continue
        rows.append(_compile_row(arch, steps[arch], warmup, repeats, probe))

    # bf16 autocast vs fp32.
    from benchmarks.attack_cost import load_model
    from pipeline.data.mnist import load_split
    from pipeline.nn.images import to_model_input

    images, _labels = load_split(data_root(), "test")
    x_test = to_model_input(images[:2000])
    for arch in ("mlp", "cnn"):
        m = _model(arch, channels_last=arch == "cnn")
        a, b, s = compare(Stepper(copy.deepcopy(m)), Stepper(copy.deepcopy(m), bf16=True), steps[arch], warmup, repeats)
        trained, source = load_model(arch)
        with torch.no_grad():
            fp32 = trained.eval()(x_test)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = trained(x_test).float()
        agree = float((fp32.argmax(1) == bf16.argmax(1)).float().mean())
        diff = float((fp32 - bf16).abs().max())
        rows.append(
            row(
                "choices",
                f"{arch.upper()} step, fp32 vs bf16 autocast",
                a,
                b,
                "ms",
                ("<=", 1.0, "ratio"),
                note=f"{source}: predictions agree on {agree:.2%} of 2000 test images, max logit diff {diff:.2g}",
                prediction_agreement=agree,
                max_logit_diff=diff,
                **s,
            )
        )
    return rows


def _compile_row(arch: str, steps: int, warmup: int, repeats: int, probe) -> dict:
    case = f"{arch.upper()} step, eager vs torch.compile"
    m = _model(arch, channels_last=arch == "cnn")
    eager = Stepper(copy.deepcopy(m))
    try:
        import torch._inductor.config as inductor_config

        torch._dynamo.reset()
        # Cold: no kernels from an earlier run's on-disk cache (a rerun would compile faster).
        with inductor_config.patch(force_disable_caches=True):
            compiled = Stepper(torch.compile(copy.deepcopy(m)))
            start = time.perf_counter()
            compiled.step()  # the first training step compiles the forward and backward graphs
            first = time.perf_counter() - start
        # Neutrality, on a second compiled copy before any step (dropout draws differ between eager
        # and compiled code, so weights after a step are no test): the same logits.
        diff = _max_diff(torch.compile(copy.deepcopy(m)), copy.deepcopy(m), probe)
    except Exception as err:  # no compiler, unsupported op, ...: that is the result
        return row(
            "choices",
            case,
            None,
            note=f"torch.compile failed: {type(err).__name__}: {str(err)[:200]}",
            compile_failed=True,
        )
    a, b, s = compare(eager, compiled, steps, warmup, repeats)
    compile_s = first - b / 1000
    saved_ms = a - b
    break_even = f"pays off after {compile_s * 1000 / saved_ms:,.0f} steps" if saved_ms > 0 else "never pays off"
    return row(
        "choices",
        case,
        a,
        b,
        "ms",
        note=f"compile {compile_s:.1f} s (cold), {break_even}; max logit diff {diff:.1e}",
        compile_failed=False,
        compile_s=compile_s,
        same_logits=diff < 1e-4,
        max_logit_diff=diff,
        **s,
    )
