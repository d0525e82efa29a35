"""Training throughput: our Lightning training path against a hand-written PyTorch loop, same network.

    python bench/train_throughput.py [--steps N] [--rounds R] [--models dgex3000 dgex9000 egex] [--quick]

For each model (D-GEX 3,000 x 3 and 9,000 x 3 tanh with all 9,520 targets in one network, the default
E-GEX, TAAF D-GEX 3,000 x 3 in one network, the default ResMLP, GGAN, NCNN, and a tiny E-GEX, 943 -> 64 ->
64 -> 300 targets, whose step is so short that what ours adds per step shows) on the default synthetic
data (batch 200; the tiny model on its first 300 targets), in one process:

- **ours**: the DataModule, LightningModule and ``lightning.Trainer`` that ``src.train`` builds from the
  composed config (logger off, no checkpointing, no validation), timed by a callback over steady-state
  steps only (warm-up steps and the work between epochs are left out; the latter is reported apart);
- **plain**: a hand-written loop over the same network (the LightningModule's ``nn.Module``, freshly
  initialised with the same seed), the same in-memory tensors cut by index, the same loss and the
  model's own optimizer config and parameter groups, the same batch size.

After an untimed warm-up run, ours and plain alternate (ours, plain, plain, ours, ...) and the median
over rounds is reported (wall time, and the process's CPU time, which the machine's other load does not
inflate), with what ours spends per step beyond plain, the achieved GFLOP/s (6 x parameters x samples/s) against the fp32 and
bf16 ``torch.mm`` peaks measured in the same run, plus ``trainer.precision=bf16-mixed`` against
``torch.autocast(bfloat16)``, the samples/s the training DataLoader alone delivers, and (in two fresh
processes) D-GEX 3,000 x 3 with glibc's default malloc settings against malloc keeping freed memory.
Results go into the ``train-throughput`` section of docs/BENCHMARKS.md. ``--quick`` (or
``--steps 3 --rounds 1``) is a check that everything runs.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_paragraph, write_section  # noqa: E402
from harness import MODELS, StepTimer, build_data, build_model, compose, device, make_trainer, n_parameters, quiet, sync  # noqa: E402

#: Data overrides of the models not trained on the default data (each gets its own DataModule).
DATA_OVERRIDES = {"tiny": ["data.max_targets=300"]}
#: Models whose ours / plain ratio is not our path's overhead (tiny: the step is almost all overhead, it
#: measures the fixed cost per step instead).
NOT_COMPARABLE = {"tiny"}
#: Timed steps per measurement when --steps is not given (about 10-15 s each on a 2-core CPU).
DEFAULT_STEPS = {"dgex3000": 30, "dgex9000": 6, "egex": 120, "autoencoder": 120, "taaf3000": 30, "resmlp": 60, "ggan": 60, "ncnn": 30, "tiny": 400}


# ------------------------------------------------------------------------- the two paths
def run_ours(cfg, datamodule, steps: int, warmup: int, **trainer_kwargs) -> dict:
    model = build_model(cfg, datamodule)
    timer = StepTimer()
    trainer = make_trainer(cfg, model, [timer], max_steps=warmup + steps, **trainer_kwargs)
    trainer.fit(model, datamodule=datamodule)
    sync()
    times = timer.step_times[warmup:]
    result = {"steps_per_s": len(times) / sum(times), "cpu_per_step": sum(timer.cpu_times[warmup:]) / len(times),
              "epoch_gaps": list(timer.epoch_gaps), "params": n_parameters(model)}
    del trainer, model, timer
    gc.collect()
    return result


def plain_loss(loss: str):
    """The models' criterion written out: squared error averaged over the batch, and over (mse) or
    summed over (sse) the genes."""
    if loss == "mse":
        return lambda pred, y: (pred - y).square().mean()
    return lambda pred, y: (pred - y).square().sum(dim=-1).mean()


def plain_step(cfg, model, autocast):
    """One training step of the plain loop, ``step(x, y)``: the network's loss under ``autocast``, then
    ``zero_grad``, backward and the optimizer's step (as Lightning's automatic optimisation runs them); for
    GGAN, all of it under ``autocast`` as in its manual optimisation: the discriminator's step on ``G(x)``,
    then the generator's against it, in ``GGAN.training_step``'s order (its loss terms are plain functions
    of the two networks)."""
    import hydra

    if getattr(model, "discriminator", None) is not None:
        model.discriminator.to(device()).train()
        opt_g, opt_d = model.configure_optimizers()

        @autocast
        def step(x, y):
            pred = model.net(x)
            d_loss = model.discriminator_step_loss(x, y, pred)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = model.generator_loss(model.generator_losses(x, y, pred))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

        return step
    optimizer = hydra.utils.instantiate(cfg.model.optimizer, _convert_="all")(params=model.param_groups())
    criterion = plain_loss(cfg.model.loss)
    landmarks_in = model.predicts_from_landmarks  # the target autoencoder reads the targets

    def step(x, y):
        with autocast:
            loss = criterion(model.net(x if landmarks_in else y), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run_plain(cfg, datamodule, steps: int, warmup: int, bf16: bool = False) -> dict:
    """A hand-written loop: same network (fresh, same seed), same tensors, loss, optimizer and batch size."""
    dev = device()
    model = build_model(cfg, datamodule)
    model.net.to(dev).train()
    step = plain_step(cfg, model, torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16))
    train = datamodule.splits["train"]
    x_all, y_all = train.landmarks.to(dev), train.targets.to(dev)
    n, batch = len(x_all), cfg.data.batch_size
    generator = torch.Generator().manual_seed(cfg.seed)
    done, start = 0, None
    while done < warmup + steps:
        order = torch.randperm(n, generator=generator).to(dev)
        for first in range(0, n - batch + 1, batch):
            if done == warmup:
                sync()
                start, start_cpu = time.perf_counter(), time.process_time()
            if done == warmup + steps:
                break
            idx = order[first : first + batch]
            x, y = x_all[idx], y_all[idx]
            step(x, y)
            done += 1
    sync()
    result = {"steps_per_s": steps / (time.perf_counter() - start), "cpu_per_step": (time.process_time() - start_cpu) / steps}
    del model, step
    gc.collect()
    return result


#: A fresh process measuring one model, ours and plain, fp32 and bf16, with ``keep_freed_memory`` (the
#: training config's glibc setting, applied after loading the data) true or false.
ALLOCATOR_CHILD = """
import json, sys
from bench.harness import MODELS, quiet, compose, build_data
from bench.train_throughput import run_ours, run_plain
quiet()
name, steps, warmup, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
datamodule = build_data(compose([*MODELS[name][1], f"keep_freed_memory={keep}"]))
out = {}
for precision in ("32-true", "bf16-mixed"):
    cfg = compose([*MODELS[name][1], f"trainer.precision={precision}", f"keep_freed_memory={keep}"])
    run_plain(cfg, datamodule, 1, warmup, bf16=precision != "32-true")  # untimed: heap and kernels warm up
    out[precision] = {"ours": run_ours(cfg, datamodule, steps, warmup)["steps_per_s"],
                      "plain": run_plain(cfg, datamodule, steps, warmup, bf16=precision != "32-true")["steps_per_s"]}
print(json.dumps(out))
"""


def allocator_check(name: str, steps: int, warmup: int) -> dict:
    """Steps/s of ``name`` in two fresh processes: glibc's default malloc settings (``keep_freed_memory=false``),
    then freed memory kept (``true``, the default of ``src.train``)."""
    from common import run_child

    out = {}
    for mode, keep in (("default", "false"), ("retain", "true")):
        out[mode] = run_child(ALLOCATOR_CHILD, name, str(steps), str(warmup), keep)
        print(f"  allocator {mode}: {out[mode]}", flush=True)
    return out


def matmul_gflops(dtype: torch.dtype, n: int = 4096, reps: int = 5) -> float:
    """Peak GFLOP/s of ``torch.mm`` on n x n matrices (2 n^3 per product), best of ``reps``."""
    dev = device()
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    out = torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def data_path_samples_per_s(datamodule, min_seconds: float = 2.0) -> dict:
    """Samples/s of the DataModule's training DataLoader alone: whole epochs, no model."""
    loader = datamodule.train_dataloader()
    samples, epochs, t = 0, 0, time.perf_counter()
    while True:
        loader.sampler.set_epoch(epochs)
        for x, y in loader:
            samples += len(x)
        epochs += 1
        elapsed = time.perf_counter() - t
        if elapsed >= min_seconds:
            return {"samples_per_s": samples / elapsed, "epochs": epochs, "samples_per_epoch": samples // epochs}


# ------------------------------------------------------------------------- the benchmark
@functools.cache
def _other_data(overrides: tuple[str, ...]):
    return build_data(compose(list(overrides)))


def datamodule_for(name: str, default, base: list[str]):
    """The default DataModule, or one of its own for a model with data overrides (built once)."""
    extra = DATA_OVERRIDES.get(name)
    return _other_data((*base, *extra)) if extra else default


def measure(name: str, datamodule, precision: str, steps: int, warmup: int, rounds: int, epoch_end: bool = False) -> dict:
    """Median steps/s of ours and plain over ``rounds``; with ``epoch_end``, also one short run of ours
    with 2-batch epochs, to time the work between two epochs."""
    label, overrides = MODELS[name]
    cfg = compose([*overrides, *DATA_OVERRIDES.get(name, []), f"trainer.precision={precision}"])
    bf16 = precision.startswith("bf16")
    # Untimed first: the process's first steps at a new model size or precision pay for growing the
    # heap and for first-use kernel set-up, which would otherwise fall on whichever path runs first.
    run_plain(cfg, datamodule, 1, warmup, bf16=bf16)
    ours, plain, ours_cpu, plain_cpu, gaps, params = [], [], [], [], [], 0
    for r in range(rounds):
        # Alternate which path goes first (ours, plain / plain, ours / ...).
        for path in ("ours", "plain") if r % 2 == 0 else ("plain", "ours"):
            if path == "ours":
                o = run_ours(cfg, datamodule, steps, warmup)
                ours.append(o["steps_per_s"])
                ours_cpu.append(o["cpu_per_step"])
                gaps += o["epoch_gaps"]
                params = o["params"]
            else:
                o = run_plain(cfg, datamodule, steps, warmup, bf16=bf16)
                plain.append(o["steps_per_s"])
                plain_cpu.append(o["cpu_per_step"])
        print(f"  {name} {precision} round {r + 1}: ours {ours[-1]:.3f} steps/s, plain {plain[-1]:.3f} steps/s; "
              f"CPU per step ours {1000 * ours_cpu[-1]:.2f} ms, plain {1000 * plain_cpu[-1]:.2f} ms", flush=True)
    if epoch_end:
        gaps += run_ours(cfg, datamodule, 1, 2, limit_train_batches=2)["epoch_gaps"]
        print(f"  {name} {precision} between epochs: {gaps[-1]:.2f} s", flush=True)
    return {
        "model": name, "label": label, "precision": precision, "params": params,
        "batch": cfg.data.batch_size, "optimizer": cfg.model.optimizer._target_.rsplit(".", 1)[-1],
        "ours": statistics.median(ours), "plain": statistics.median(plain),
        "ours_rounds": ours, "plain_rounds": plain, "epoch_gap": statistics.median(gaps) if gaps else None,
        # What ours spends per step beyond plain (ms), in wall time (medians of the step times) and CPU time.
        "extra_ms": 1000 * (1 / statistics.median(ours) - 1 / statistics.median(plain)),
        "extra_cpu_ms": 1000 * (statistics.median(ours_cpu) - statistics.median(plain_cpu)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help=f"timed steps per measurement (default per model: {DEFAULT_STEPS})")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    parser.add_argument("--rounds", type=int, default=3, help="ours/plain alternations per model and precision")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--bf16-models", nargs="*", default=None, choices=list(MODELS),
                        help="models also measured in bf16 (default: all chosen models)")
    parser.add_argument("--no-allocator-check", action="store_true",
                        help="skip the two extra processes comparing malloc settings on D-GEX 3,000 x 3")
    parser.add_argument("--no-keep-freed-memory", action="store_true",
                        help="run the main measurements with keep_freed_memory=false (glibc's default malloc settings)")
    parser.add_argument("--data-overrides", nargs="*", default=[],
                        help="Hydra overrides of the data for every model, e.g. data.on_device=false (batches copied from host memory)")
    parser.add_argument("--section", default="train-throughput",
                        help="the docs/BENCHMARKS.md section written (another name for a run of some models only)")
    parser.add_argument("--quick", action="store_true",
                        help="a check that everything runs: --steps 3 --rounds 1, bf16 not for D-GEX 9,000")
    args = parser.parse_args()
    if args.quick:
        args.steps = args.steps or 3
        args.rounds = 1
        if args.bf16_models is None:
            args.bf16_models = ["dgex3000", "egex"]
    bf16_models = args.models if args.bf16_models is None else [m for m in args.models if m in args.bf16_models]
    quiet()
    torch.set_float32_matmul_precision("highest")

    t0 = time.perf_counter()
    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)
    base = (["keep_freed_memory=false"] if args.no_keep_freed_memory else []) + list(args.data_overrides)
    datamodule = build_data(compose(base))  # applies keep_freed_memory to this whole process, as src.train does
    data = data_path_samples_per_s(datamodule)
    print(f"data path alone: {data['samples_per_s']:,.0f} samples/s", flush=True)

    rows = []
    for name in args.models:
        steps = args.steps or DEFAULT_STEPS[name]
        for precision in ["32-true", *(["bf16-mixed"] if name in bf16_models else [])]:
            epoch_end = name.startswith("dgex") and precision == "32-true" and not args.quick
            rows.append(measure(name, datamodule_for(name, datamodule, base), precision, steps, args.warmup, args.rounds, epoch_end))
    allocator = None
    if "dgex3000" in args.models and not args.no_allocator_check:
        allocator = allocator_check("dgex3000", args.steps or DEFAULT_STEPS["dgex3000"], args.warmup)
    # The peak again at the end: the machine's load may have changed; the higher value is the peak.
    peaks = {"fp32": max(peaks["fp32"], matmul_gflops(torch.float32)), "bf16": max(peaks["bf16"], matmul_gflops(torch.bfloat16))}
    elapsed = time.perf_counter() - t0
    body = report(rows, peaks, data, allocator, args, elapsed)
    print(body)
    print(f"wrote {write_section(args.section, body)}")


# ------------------------------------------------------------------------- the report
def gflops(row: dict, which: str) -> float:
    """Achieved GFLOP/s of one measured row's ``which`` path (``"ours"`` or ``"plain"``): 6 x parameters x
    samples/s."""
    return 6 * row["params"] * row[which] * row["batch"] / 1e9


def goal_status(met: bool) -> str:
    """How a finding ends when it checks a goal."""
    return "met." if met else "not met."


def results_table(rows: list[dict], peaks: dict) -> list[str]:
    """The markdown table of the measurements, one line per model and precision: steps/s of both paths,
    their ratio, what ours spends per step beyond plain, samples/s, GFLOP/s and shares of the matmul peaks."""
    table = [
        "| Model (parameters) | Precision | Ours steps/s | Plain steps/s | Ours / plain | Ours - plain per step, wall / CPU "
        "| Ours samples/s | Ours GFLOP/s | Plain GFLOP/s | Ours / plain, % of fp32 peak | % of bf16 peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        go, gp = gflops(r, "ours"), gflops(r, "plain")
        bf = f"{100 * go / peaks['bf16']:.0f} / {100 * gp / peaks['bf16']:.0f}" if r["precision"].startswith("bf16") else ""
        table.append(
            f"| {r['label']} ({r['params'] / 1e6:.1f} M, {r['optimizer']}) | {r['precision']} | {r['ours']:.2f} | {r['plain']:.2f} "
            f"| **{r['ours'] / r['plain']:.2f}** | {r['extra_ms']:+.2f} / {r['extra_cpu_ms']:+.2f} ms "
            f"| {r['ours'] * r['batch']:,.0f} | {go:.0f} | {gp:.0f} "
            f"| {100 * go / peaks['fp32']:.0f} / {100 * gp / peaks['fp32']:.0f} | {bf} |"
        )
    return table


def ratio_finding(rows: list[dict]) -> str | None:
    """The *Ours against plain* paragraph: every row's ours / plain ratio, whether the 0.95 goal is met (the
    tiny model aside) and the per-round ratios; None without rows."""
    if not rows:
        return None
    # The ratio goal is for the real models; the tiny model's step is almost all overhead (it measures
    # the fixed cost per step instead).
    goal = [r for r in rows if r["model"] not in NOT_COMPARABLE]
    worst = min(goal, key=lambda r: r["ours"] / r["plain"]) if goal else None
    return (
        "**Ours against plain.** Our training path runs at "
        + ", ".join(f"{r['ours'] / r['plain']:.2f} ({r['label']}, {r['precision']})" for r in rows)
        + " times the plain loop's speed; the goal is at least 0.95 in fp32 and bf16 for every model (the tiny"
        " model aside): "
        + ("met." if worst is None or worst["ours"] / worst["plain"] >= 0.95
           else f"not met (worst {worst['ours'] / worst['plain']:.3f}, {worst['label']}, {worst['precision']}).")
        + " Both paths share the process, the threads, the allocator settings and the data tensors, and"
        " alternate, so machine load hits them alike. Ours / plain within each round (adjacent runs), which shows"
        " how far this machine's round-to-round noise reaches: "
        + "; ".join(f"{r['label']}, {r['precision']}: "
                    + ", ".join(f"{o / q:.2f}" for o, q in zip(r["ours_rounds"], r["plain_rounds"])) for r in rows)
        + "."
    )


def fixed_cost_finding(rows: list[dict]) -> str | None:
    """The *fixed cost per step* paragraph: what ours spends per step beyond plain on the tiny model, against
    the 1 ms goal, and where it goes; None when the tiny model was not measured."""
    tiny = [r for r in rows if r["model"] == "tiny"]
    if not tiny:
        return None
    return (
        "**The fixed cost per step.** What ours spends per step beyond plain where the step itself is negligible"
        " (the tiny model): "
        + ", ".join(f"{r['extra_ms']:+.2f} ms wall, {r['extra_cpu_ms']:+.2f} ms CPU ({r['precision']})" for r in tiny)
        + "; the goal is under 1 ms. What remains is Lightning's loop (about a dozen LightningModule hooks and six"
        " callback hooks per step, the optimizer closure, the data fetcher) and `ExpressionModel.accumulate_train`'s"
        " sums on the device (the epoch's loss, and the absolute error on an eighth of each batch, for `train/loss` and `train/mae`). Nothing"
        " is read back from the device in a step except every `trainer.log_every_n_steps` steps (50 by default),"
        " when `train/loss_step` is logged; the progress bar then shows a host value and never waits for the"
        " device. CPU time is the process's (all threads) over the same steps: on a shared machine the wall time"
        " of both paths stretches with the load, their CPU time hardly does."
    )


def hardware_finding(d3: dict | None, peaks: dict, no_keep_freed_memory: bool) -> str | None:
    """The *Against the hardware* paragraph: the matmul peaks and D-GEX 3,000 x 3's fp32 GFLOP/s as a share of
    the fp32 peak, against the 75% goal; None when that model was not measured in fp32."""
    if not d3:
        return None
    share = gflops(d3, "ours") / peaks["fp32"]
    return (
        f"**Against the hardware.** The fp32 `torch.mm` peak (4096 x 4096, best of 5, start and end of the run) is "
        f"{peaks['fp32']:.0f} GFLOP/s and the bf16 peak {peaks['bf16']:.0f} GFLOP/s. D-GEX 3,000 x 3 trains at "
        f"{gflops(d3, 'ours'):.0f} GFLOP/s (plain {gflops(d3, 'plain'):.0f}), {100 * share:.0f}% of the fp32 peak; "
        "the goal is 75%: " + goal_status(share >= 0.75)
        + " Its matrix products are large enough to run near the peak; what a step adds is memory traffic: tanh,"
        " dropout, the loss and the optimizer update (about 12 bytes read and written per parameter)"
        + (", and, with glibc's default settings (`--no-keep-freed-memory`), fresh memory for the gradients on every"
           " step (next paragraph)." if no_keep_freed_memory else ".")
        + " E-GEX's layers are narrower (its 1,024 x 9,520 output layer holds most of its parameters)."
    )


def allocator_finding(allocator: dict | None, d3: dict | None, peaks: dict) -> str | None:
    """The *allocator* paragraph: D-GEX 3,000 x 3's steps/s in the two fresh processes, glibc's default malloc
    settings against freed memory kept, and the gain; None without the allocator check."""
    if not allocator:
        return None

    def fmt(mode, precision):
        v = allocator[mode][precision]
        return f"ours {v['ours']:.2f} / plain {v['plain']:.2f}"

    gain = {p: allocator["retain"][p]["plain"] / allocator["default"][p]["plain"] for p in ("32-true", "bf16-mixed")}
    retained = 6 * d3["params"] * d3["batch"] * allocator["retain"]["32-true"]["ours"] / 1e9 if d3 else None
    return (
        "**The allocator.** With glibc's default settings malloc serves blocks above its mmap threshold (at most"
        " 32 MiB) with fresh `mmap`s and returns them to the OS when freed; the gradients (freed every step by"
        " `zero_grad(set_to_none=True)`), bf16 copies of the weights under autocast and large activations are such"
        " blocks, so every step page-faults and zeroes hundreds of MiB again. `src.train` therefore keeps freed"
        " memory in the process after loading the data (`keep_freed_memory: true`, `src/utils/allocator.py`:"
        " `mallopt(M_MMAP_MAX, 0)`, `mallopt(M_TRIM_THRESHOLD, 2 GiB)`), and so does *ours* here (and, as the"
        " setting is process-wide, *plain*). In two fresh processes, D-GEX 3,000 x 3 steps/s with"
        f" `keep_freed_memory=false`: fp32 {fmt('default', '32-true')}, bf16 {fmt('default', 'bf16-mixed')}; with"
        f" `true`: fp32 {fmt('retain', '32-true')}, bf16 {fmt('retain', 'bf16-mixed')}, i.e."
        f" {gain['32-true']:.2f}x (fp32) and {gain['bf16-mixed']:.2f}x (bf16) for the plain loop"
        + (f", and {retained:.0f} GFLOP/s = {100 * retained / peaks['fp32']:.0f}% of the fp32 peak for ours." if retained else ".")
        + " With the default settings the step times also vary far more from step to step. The price: memory freed"
        " during training goes back to the OS only when the process ends."
    )


def bf16_finding(rows: list[dict]) -> str | None:
    """The *bf16* paragraph: each model's bf16 speed-up over fp32, ours and plain; None without bf16 rows."""
    fp32 = [r for r in rows if r["precision"] == "32-true"]
    bf16 = {r["model"]: r for r in rows if r["precision"].startswith("bf16")}
    if not bf16:
        return None
    parts = []
    for m, r in bf16.items():
        base = next((x for x in fp32 if x["model"] == m), None)
        if base:
            parts.append(f"{MODELS[m][0]}: ours {r['ours'] / base['ours']:.2f}x, plain {r['plain'] / base['plain']:.2f}x "
                         f"(ours / plain {r['ours'] / r['plain']:.2f})")
    return (
        "**bf16.** `trainer.precision=bf16-mixed` (Lightning's autocast) against `torch.autocast(bfloat16)` in the"
        " plain loop, speed-up over fp32: " + "; ".join(parts) + ". Weights, gradients and optimizer state stay fp32"
        " in both (mixed precision), so the optimizer update does not get faster, and autocast makes a bf16 copy of"
        " every weight matrix in every step: bf16 gains far less than the ratio of the matmul peaks."
    )


def data_path_finding(rows: list[dict], data: dict) -> str | None:
    """The *Data path* paragraph: the DataLoader's samples/s alone against what the largest model consumes,
    against the 20 times goal; None without rows."""
    fp32 = [r for r in rows if r["precision"] == "32-true"]
    largest = max(fp32 or rows, key=lambda r: r["params"]) if rows else None
    if not largest:
        return None
    model_sps = largest["ours"] * largest["batch"]
    return (
        f"**Data path.** The training DataLoader alone (index-cut batches of {largest['batch']} from the in-memory "
        f"tensors, {data['samples_per_epoch']:,} samples per epoch, {data['epochs']} epochs) delivers "
        f"{data['samples_per_s']:,.0f} samples/s, {data['samples_per_s'] / model_sps:,.0f} times what the largest "
        f"model ({largest['label']}) consumes ({model_sps:,.0f} samples/s); the goal is 20 times: "
        + goal_status(data["samples_per_s"] >= 20 * model_sps)
    )


def epoch_gap_finding(rows: list[dict], data: dict) -> str | None:
    """The *Between epochs* paragraph: the time between two epochs (left out of the step times) and its share
    of an epoch, with D-GEX's learning-rate rule explained; None when no row timed it."""
    gap_rows = [r for r in rows if r["epoch_gap"] is not None]
    if not gap_rows:
        return None
    steps_per_epoch = data["samples_per_epoch"] // rows[0]["batch"]
    return (
        "**Between epochs** (not in the step times above; for D-GEX from one extra run with 2-batch epochs): "
        + "; ".join(f"{r['label']}, {r['precision']}: {r['epoch_gap']:.2f} s, {100 * r['epoch_gap'] * r['ours'] / steps_per_epoch:.0f}%"
                    f" on top of an epoch's {steps_per_epoch} steps" for r in gap_rows)
        + (". For D-GEX this is the paper's learning-rate rule in `DGEX.on_train_epoch_end`: the MAE of 5,000 training"
           " samples after every epoch, a forward pass over about half an epoch's samples (a forward pass is about a"
           " third of a training step's work), so roughly a sixth more time per epoch on this data; on GEO-sized data"
           " (88,807 training samples) the same 5,000 samples are a few percent."
           if any(r["model"].startswith("dgex") for r in gap_rows) else ".")
    )


def findings(rows: list[dict], peaks: dict, data: dict, allocator: dict | None, args) -> list[str]:
    """The paragraphs under the table, in order, each only where its measurements were taken."""
    d3 = next((r for r in rows if r["precision"] == "32-true" and r["model"] == "dgex3000"), None)
    paragraphs = [
        ratio_finding(rows),
        fixed_cost_finding(rows),
        hardware_finding(d3, peaks, args.no_keep_freed_memory),
        allocator_finding(allocator, d3, peaks),
        bf16_finding(rows),
        data_path_finding(rows, data),
        epoch_gap_finding(rows, data),
    ]
    return [p for p in paragraphs if p is not None]


def section_heading(args) -> str:
    """The section's markdown heading; a run in a section of its own (``--section``) names its models."""
    if args.section == "train-throughput":
        return "## Training throughput: ours against a plain PyTorch loop (`bench/train_throughput.py`)"
    return (f"## Training throughput, {', '.join(MODELS[m][0] for m in args.models)} "
            f"(`bench/train_throughput.py --models {' '.join(args.models)}`)")


def settings_paragraph(data: dict, args, elapsed: float) -> str:
    """The *Settings* paragraph: data, batch, warm-up and timed steps, rounds, malloc setting, data overrides,
    total time, and what *ours* and *plain* are."""
    steps = args.steps or "per model " + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items() if k in args.models)
    return (
        f"Settings: default synthetic data ({data['samples_per_epoch']:,} training samples, 943 landmarks, 9,520 targets; "
        "the tiny model its first 300 targets), batch 200, "
        f"an untimed warm-up run, then per measurement {args.warmup} warm-up steps and {steps} timed steps, ours "
        f"and plain alternating (ours first, then plain first, ...) for {args.rounds} round(s), medians reported; "
        + ("`keep_freed_memory=false` (glibc's default malloc settings, `--no-keep-freed-memory`); "
           if args.no_keep_freed_memory else "`keep_freed_memory=true` (freed memory kept, as `src.train` runs); ")
        + (f"data overrides `{' '.join(args.data_overrides)}`; " if args.data_overrides else "")
        + f"total {elapsed / 60:.1f} min. *Ours*: `src.train`'s DataModule, "
        "LightningModule and Trainer (`logger=none`, no checkpointing, `limit_val_batches=0`, no progress bar), "
        "timed per step by a callback from the end of one step to the end of the next (batch fetch, step, logging "
        "and metric updates included, epoch-end work excluded). *Plain*: the same network freshly initialised with "
        "the same seed, the same training tensors cut by index, the same loss, optimizer and parameter groups "
        "(D-GEX: SGD momentum 0.5, per-layer rates; E-GEX: fused Adam; GGAN: its discriminator's step, then its "
        "generator's), nothing else. GFLOP/s = 6 x parameters x samples/s (GGAN: both networks' parameters, a "
        "lower bound, since its generator also runs a second forward pass for the consistency term)."
    )


def report(rows: list[dict], peaks: dict, data: dict, allocator: dict | None, args, elapsed: float) -> str:
    """The markdown of the ``train-throughput`` section (or ``--section``'s): heading, machine, settings, the
    results table and the findings."""
    return "\n".join([
        section_heading(args),
        "",
        machine_paragraph(args.quick, f"{torch.get_num_threads()} torch threads, device {device()}"),
        "",
        settings_paragraph(data, args, elapsed),
        "",
        *results_table(rows, peaks),
        "",
        *[p + "\n" for p in findings(rows, peaks, data, allocator, args)],
    ])


if __name__ == "__main__":
    main()
