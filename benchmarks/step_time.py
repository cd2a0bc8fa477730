"""Speed of one DAGMM training step in the paper's KDDCUP setting (batch 1024).

Writes ``reports/benchmarks/step_time_<device>.csv`` and ``.md`` with:

* ms per training step (fresh random rows of a table of KDDCUP's size each
  step, as in training) for one run, and for 20 runs trained together
  (per batched step and per run), on the CPU both eager and through
  ``torch.compile`` (the compile itself happens in the warm-up steps);
* ms per step of the common public design (``common_design.py``: per-sample
  DataLoader, a Python loop over components, explicit inverses), measured in
  the same run, and the ratio: twice, first with the C library's malloc as
  the environment sets it (as that design runs elsewhere), then with the
  malloc settings this project applies (``dagmm.engine.allocator``, for the rest);
* the achieved FLOP rate of those steps against this machine's measured
  float32 matrix-multiply rate;
* a floor: the linear layers' matrix multiplies of one step alone, at their
  exact shapes, with nothing else (the FLOP count above is theirs);
* optionally (``--full-run``) the wall time of one full 200-epoch KDDCUP run
  on the real data (needs the data files).

Usage: ``python benchmarks/step_time.py [--device auto] [--full-run]``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import pandas as pd
import torch

from dagmm import DAGMM, paths
from dagmm.engine import allocator
from dagmm.estimator import build_module
from dagmm.engine.training import (Stepper, describe_device, make_generators, prepare_device, resolve_device, table_to_device,
                            take_rows)

B = 1024
D_IN = 118
N_ROWS = 494_021  # KDDCUP 10%


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(dev, n=None, reps=10) -> float:
    """Measured float32 matrix-multiply rate in GFLOP/s."""
    n = n or (8192 if dev.type == "cuda" else 2048)
    a = torch.randn(n, n, device=dev)
    for _ in range(3):
        a @ a
    sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        a @ a
    sync(dev)
    return reps * 2 * n**3 / (time.perf_counter() - t) / 1e9


def step_flops(est: DAGMM, n_runs: int, **shape) -> float:
    """Matrix-multiply FLOPs of one training step's linear layers (the shapes of :func:`step_gemms`)."""
    return sum(2 * r * m * k * n for r, m, k, n in step_gemms(est, n_runs, **shape))


def step_gemms(est: DAGMM, n_runs: int, d_in: int = D_IN, batch: int = B,
               estimation: bool = True) -> list[tuple[int, int, int, int]]:
    """The linear layers' matrix multiplies of one training step as (runs, m, k, n) shapes.

    Per linear layer (in -> out) of the encoder, the mirrored decoder and (with
    ``estimation``) the estimation network: forward (batch x in) @ (in x out),
    the gradient of the weight (in x batch) @ (batch x out) and, except for the
    first layer (the data needs no gradient), the gradient of the input
    (batch x out) @ (out x in). The estimation network's input is z plus the two
    reconstruction features. The mixture's own products (memberships times
    codes, covariances, whitening) are left out: about 0.5% of these FLOPs in
    the KDDCUP setting. Defaults: the KDDCUP setting (118 features, batch 1024).
    """
    dims = (d_in, *est.hidden, est.latent_dim)
    layers = list(zip(dims[:-1], dims[1:])) + list(zip(dims[::-1][:-1], dims[::-1][1:]))
    if estimation:
        layers += [(est.latent_dim + 2, est.estimation_hidden), (est.estimation_hidden, est.n_components)]
    out = []
    for i, (a, b) in enumerate(layers):
        out += [(n_runs, batch, a, b), (n_runs, a, batch, b)]
        if i > 0:
            out.append((n_runs, batch, b, a))
    return out


def gemm_floor_seconds(est: DAGMM, n_runs: int, dev, steps: int, repeats: int = 5, **shape) -> float:
    """Median seconds of the linear layers' matrix multiplies of one step alone, back to back at
    their exact shapes into preallocated outputs: what a step would cost if it did nothing else
    (no activations, mixture, loss, optimiser or framework overhead). On CUDA they are replayed
    from a CUDA graph, as the training step is. ``shape``: the keywords of :func:`step_gemms`."""
    ops = []
    for r, m, k, n in step_gemms(est, n_runs, **shape):
        a, b, c = torch.randn(r, m, k, device=dev), torch.randn(r, k, n, device=dev), torch.empty(r, m, n, device=dev)
        ops.append((a, b, c))

    def step():
        for a, b, c in ops:
            torch.bmm(a, b, out=c)

    if dev.type == "cuda":
        step()  # cuBLAS sets up its handle and workspace outside the capture
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        return median_step_seconds(graph.replay, dev, steps, repeats, warmup=5)
    return median_step_seconds(step, dev, steps, repeats, warmup=5)


def median_step_seconds(step, dev, steps: int, repeats: int, warmup: int) -> float:
    """Median over ``repeats`` of the mean seconds per call of ``step`` (after ``warmup`` calls)."""
    for _ in range(warmup):
        step()
    sync(dev)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync(dev)
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)


def time_steps(est: DAGMM, n_runs: int, dev, steps: int, repeats: int = 5, compile: bool = False) -> float:
    """Median seconds per training step (dagmm.engine.training.Stepper, as in the training loop;
    ``compile``: through ``torch.compile``, compiled during the warm-up steps)."""
    module = build_module(est, n_runs, D_IN)
    module.reset_parameters(make_generators(range(n_runs)))
    module.to(dev)
    # a table of KDDCUP's size, placed as training places it, and fresh random rows every step:
    # a small table, or the same rows each step, would stay in the caches and the TLB as real training does not
    X = table_to_device(torch.rand(N_ROWS, D_IN), dev)
    stepper = Stepper(module, est.lr, est.lambda_energy, est.lambda_cov, compile=compile)
    gens = make_generators(range(n_runs))
    mask = torch.ones(n_runs, B, est.estimation_hidden, device=dev) * 2
    perm = torch.stack([torch.randperm(N_ROWS, generator=g) for g in gens]).to(dev)
    batches = itertools.cycle(range(N_ROWS // B))

    def step():
        k = next(batches)
        stepper(take_rows(X, perm[:, k * B : (k + 1) * B]), mask)

    sec = median_step_seconds(step, dev, steps, repeats, warmup=20)
    if compile and not stepper.compiled:
        raise RuntimeError("torch.compile fell back to eager steps: nothing compiled to time")
    return sec


def time_common_design(dev, steps: int, repeats: int = 3) -> float:
    """Median seconds per step of the common public design, DataLoader included."""
    from common_design import CommonDAGMM, make_loader

    torch.manual_seed(0)
    model = CommonDAGMM().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = make_loader(torch.rand(200_000, D_IN), B)

    def batches():
        while True:
            for (x,) in loader:
                if len(x) == B:
                    yield x

    it = batches()

    def step():
        x = next(it).to(dev)
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return median_step_seconds(step, dev, steps, repeats, warmup=10)


def full_run_seconds(dev) -> float:
    from dagmm.datasets import load_base
    from dagmm.protocol import make_split

    X, y = load_base("kddcup")
    s = make_split("kddcup", y, 0)
    t = time.perf_counter()
    DAGMM.from_paper("kddcup", device=str(dev), random_state=0).fit(X[s.train_idx])
    sync(dev)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--full-run", action="store_true", help="also time one 200-epoch KDDCUP run on the real data")
    ap.add_argument("--out", default=str(paths.BENCHMARKS))
    args = ap.parse_args(argv)
    # the common design first, as it runs elsewhere: before this process's malloc settings (dagmm.engine.allocator,
    # applied by tune_process and irreversible), which then apply to everything below, the common design again too
    dev = resolve_device(args.device)
    commons = [(time_common_design(dev, args.steps), allocator.describe())]
    allocator.tune_process()
    dev = prepare_device(args.device)
    est = DAGMM.from_paper("kddcup")
    peak = matmul_rate(dev)
    rows = []
    for r in (1, 20):
        for compile in (False, True) if dev.type == "cpu" else (False,):
            sec = time_steps(est, r, dev, args.steps, compile=compile)
            gflops = step_flops(est, r) / sec / 1e9
            how = ", torch.compile (DAGMM(torch_compile=True))" if compile else ""
            rows.append(dict(measure=f"training step, {r} run{'s' if r > 1 else ''} together{how}", runs=r,
                             ms_per_step=sec * 1e3, ms_per_run_step=sec * 1e3 / r, achieved_gflops=gflops,
                             matmul_peak_gflops=peak, fraction_of_matmul_peak=gflops / peak))
            print(rows[-1], flush=True)
        sec = gemm_floor_seconds(est, r, dev, args.steps)
        rows.append(dict(measure=f"the linear layers' matrix multiplies of one training step alone, "
                                 f"{r} run{'s' if r > 1 else ''} (a floor for any float32 step that calls this BLAS)", runs=r,
                         ms_per_step=sec * 1e3, ms_per_run_step=sec * 1e3 / r, achieved_gflops=step_flops(est, r) / sec / 1e9,
                         matmul_peak_gflops=peak, fraction_of_matmul_peak=step_flops(est, r) / sec / 1e9 / peak))
        print(rows[-1], flush=True)
    commons.append((time_common_design(dev, args.steps), allocator.describe()))
    ours = min(r["ms_per_step"] for r in rows if r["runs"] == 1 and r["measure"].startswith("training step")) / 1e3
    for common, memory in commons:
        rows.append(dict(measure="training step, common public design (1 run, per-sample DataLoader, per-component loop; "
                                 f"memory: {memory})",
                         runs=1, ms_per_step=common * 1e3, ms_per_run_step=common * 1e3,
                         achieved_gflops=step_flops(est, 1) / common / 1e9, matmul_peak_gflops=peak,
                         fraction_of_matmul_peak=step_flops(est, 1) / common / 1e9 / peak, speedup_of_ours=common / ours))
        print(rows[-1], flush=True)
    floors = {r["runs"]: r["ms_per_run_step"] for r in rows if r["measure"].startswith("the linear layers")}
    if args.full_run:
        sec = full_run_seconds(dev)
        rows.append(dict(measure="one full KDDCUP run (200 epochs, real data)", runs=1, wall_s=sec))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.insert(0, "device", describe_device(dev))
    df.insert(1, "torch", torch.__version__)
    os.makedirs(args.out, exist_ok=True)
    tag = "cuda" if dev.type == "cuda" else "cpu"
    df.to_csv(os.path.join(args.out, f"step_time_{tag}.csv"), index=False, float_format="%.6g")
    best_per_run = min(r["ms_per_run_step"] for r in rows if r["measure"].startswith("training step") and "speedup_of_ours" not in r)
    with open(os.path.join(args.out, f"step_time_{tag}.md"), "w") as fh:
        fh.write(f"# DAGMM training step, KDDCUP setting (batch {B})\n\n")
        fh.write(f"Device: {describe_device(dev)}; torch {torch.__version__}; written by `benchmarks/step_time.py`.\n"
                 f"Memory: {allocator.describe()}, for every measurement below but the first of the common design "
                 "(measured first, with the C library's malloc as the environment sets it).\n\n")
        for r in rows:
            if "ms_per_step" in r:
                fh.write(f"- {r['measure']}: {r['ms_per_step']:.3f} ms per step ({r['ms_per_run_step']:.3f} ms per run-step), "
                         f"{r['achieved_gflops']:.1f} GFLOP/s = {100 * r['fraction_of_matmul_peak']:.2f}% of the measured "
                         f"float32 matmul rate ({r['matmul_peak_gflops']:.0f} GFLOP/s)")
                if "speedup_of_ours" in r:
                    fh.write(f"; this project's fastest single-run step is {r['speedup_of_ours']:.2f}x faster, "
                             f"its fastest per-run step {r['ms_per_step'] / best_per_run:.2f}x")
                fh.write("\n")
            else:
                fh.write(f"- {r['measure']}: {r['wall_s']:.1f} s\n")
        fh.write("\nThe largest speed-up over the common design that any float32 step calling this BLAS could reach here "
                 "(its step time over the matrix-multiply floor): "
                 + "; ".join(f"memory as {'first' if i == 0 else 'second'} measured, "
                             + ", ".join(f"{c * 1e3 / ms:.1f}x per run-step with {r} run{'s' if r > 1 else ''}"
                                         for r, ms in sorted(floors.items()))
                             for i, (c, _) in enumerate(commons)) + ".\n")
    print(df.to_string())


if __name__ == "__main__":
    main()
