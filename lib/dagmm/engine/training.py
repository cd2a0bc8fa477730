"""Training loop: R runs of a :class:`~dagmm.engine.module.DAGMMModule` at once.

The data stay on the device as one array; each run has its own training row
indices, its own input scaling, its own shuffling and dropout generators,
so a run gives the same result whether it is trained alone or beside others.
The hot loop has no host synchronisation: losses are accumulated on the
device and looked at once per epoch (to flag runs that went NaN).
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import allocator
from ..mixture import CovarianceJitterWarning
from .module import DAGMMModule
from .layers import FEATURE_MAJOR_MIN_BATCH, feature_major_steps

__all__ = ["Stepper", "resolve_device", "prepare_device", "raise_compile_limit", "quiet_cpp_wrapper_notices", "compile_settings", "describe_device", "make_generators", "epoch_permutations", "dropout_masks", "eval_chunk_rows", "iter_chunks", "table_to_device", "take_rows", "fit_minmax", "fit_zscore", "fit_scaling", "fit_norm_floor", "train", "run_epochs", "run_index", "INIT_SEED_OFFSET", "SHUFFLE_SEED_OFFSET", "DROPOUT_SEED_OFFSET", "NOISE_SEED_OFFSET", "SECOND_STAGE_SEED_OFFSET", "estimate_mixture", "compute_energy", "compute_scores", "embed"]

COMPILE_LIMIT = 64  # compiled versions of DAGMMModule.loss kept (dynamo's recompile_limit while compiled steps run)
_COMPILE_FAILED = False  # set by the first failed compile: later steppers train eagerly without retrying
_CPP_WRAPPER_FAILED = False  # set by the first failed compile with inductor's C++ wrapper: later ones go without

# Each run draws each kind of random number from its own generator, seeded with the run's seed plus:
INIT_SEED_OFFSET = 0  # initial weights (dagmm.estimator.fit_runs)
SHUFFLE_SEED_OFFSET = 2_000_033  # mini-batch shuffling (fit_runs gives train seed + this; train_runs adds it itself)
DROPOUT_SEED_OFFSET = 1_000_003  # dropout masks, on top of the seed given to train
NOISE_SEED_OFFSET = 3_000_017  # compressor noise (VAE) or denoising noise (DSEBM), on top of the seed given
SECOND_STAGE_SEED_OFFSET = 4_000_037  # a second training stage (DAGMMVariant's, DCN's joint one), on top of that


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) is CUDA when available, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return dev


def prepare_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device a fit trains on (:func:`resolve_device`); every fit calls this first.

    It changes nothing in the process: the CPU tuning of :mod:`dagmm.engine.allocator`
    applies only after :func:`dagmm.engine.allocator.tune_process`."""
    return resolve_device(device)


def describe_device(device: str | torch.device | None = "auto") -> str:
    """Human-readable name of a device: the GPU's name, or the CPU model, threads and cores."""
    import os
    import platform

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            info = dict(ln.split(":", 1) for ln in fh.read().split("\n\n")[0].splitlines() if ":" in ln)
        info = {k.strip(): v.strip() for k, v in info.items()}
        cpu = info.get("model name", cpu)
        if "cpu family" in info and not any(c.isdigit() for c in cpu):
            # a virtual machine may name only the brand ("AMD EPYC"): its family and model tell generations apart
            cpu += f", family {info['cpu family']} model {info.get('model', '?')}"
    except OSError:
        pass
    return f"cpu: {cpu} ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"


def make_generators(seeds: Sequence[int], device: torch.device | str = "cpu", offset: int = 0) -> list[torch.Generator]:
    """One seeded ``torch.Generator`` per run."""
    gens = []
    for s in seeds:
        g = torch.Generator(device=device)
        g.manual_seed(int(s) + offset)
        gens.append(g)
    return gens


_POOL = None  # threads that draw different runs' random numbers at once on the CPU
_POOL_WORKERS = 0


def _per_run(fn, n_runs: int) -> None:
    """``fn(r)`` for every run ``r``, on up to ``torch.get_num_threads()`` threads.

    For CPU random draws: a generator's draws run serially inside torch (with
    the GIL released), one generator per run, so runs can draw side by side
    and each run's numbers are the same as when drawn alone.
    """
    global _POOL, _POOL_WORKERS
    workers = min(n_runs, torch.get_num_threads())
    if workers <= 1:
        for r in range(n_runs):
            fn(r)
        return
    if _POOL_WORKERS < workers:  # first use, or more threads allowed since
        from concurrent.futures import ThreadPoolExecutor

        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL, _POOL_WORKERS = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dagmm-rng"), workers
    for f in [_POOL.submit(fn, r) for r in range(n_runs)]:
        f.result()


def epoch_permutations(generators: Sequence[torch.Generator], epochs: int, n: int, device) -> torch.Tensor:
    """A random permutation of ``range(n)`` per epoch and run, each run from its own generator.

    Returns a long tensor (epochs, R, n). On the CPU each is ``torch.randperm``
    (one call per epoch; far cheaper there than sorting ``n`` uniform draws);
    on CUDA an argsort of uniform draws (one call
    per run for all epochs). Either way a run's permutations depend only on
    its own generator, not on the other runs or on how epochs are grouped
    into calls.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return torch.stack([torch.stack([torch.randperm(n, generator=g) for _ in range(epochs)]) for g in generators], 1)
    return torch.stack([torch.rand(epochs, n, generator=g, device=device).argsort(-1) for g in generators], 1)


def dropout_masks(generators: Sequence[torch.Generator], epochs: int, n: int, width: int, p: float, device) -> torch.Tensor:
    """Inverted-dropout masks (epochs, R, n, width): ``1 / (1 - p)`` with probability
    ``1 - p``, else 0, each run from its own generator.

    On the CPU a mask is a uniform draw compared with ``1 - p`` (``bernoulli_``
    draws element by element there, several times slower), and runs with large
    epochs are drawn on parallel threads straight into the result
    (:func:`_per_run`); on CUDA ``bernoulli_``.
    The same distribution either way, and the same numbers however many
    threads draw them.
    """
    device = torch.device(device)
    keep = 1.0 - p
    if device.type == "cpu":
        if n * width < 16384:  # small epochs (Arrhythmia): a call per epoch costs more than threads save
            u = torch.stack([torch.rand(epochs, n, width, generator=g) for g in generators], 1)
        else:
            u = torch.empty(epochs, len(generators), n, width)

            def draw(r):  # epoch by epoch into the result: the order in which one call would draw them
                for e in range(epochs):
                    torch.rand(n, width, generator=generators[r], out=u[e, r])

            _per_run(draw, len(generators))
        return u.lt_(keep).div_(keep)
    return torch.stack(
        [torch.empty(epochs, n, width, device=device).bernoulli_(keep, generator=g) for g in generators], 1
    ).div_(keep)


def table_to_device(X, device) -> torch.Tensor:
    """A float32 copy of the data table ``X`` (N, ...) on ``device``, for training and scoring.

    On the CPU, after :func:`dagmm.engine.allocator.tune_process`, a large table goes into huge-page memory
    (:func:`dagmm.engine.allocator.huge_page_array`): mini-batches gather random rows
    from it, and with 4 KB pages each row cost a TLB miss. The copy is always
    row-major (C order), whatever the layout of ``X``: the loaders' tables
    come column-major (Fortran order) from pandas, and gathering rows from
    one copies element by element, an order of magnitude slower.
    """
    device = torch.device(device)
    if device.type == "cpu":
        shape = tuple(np.shape(X))
        out = allocator.huge_page_array(shape, np.float32)
        if out is not None:
            out[...] = X.cpu().numpy() if isinstance(X, torch.Tensor) else X
            return torch.from_numpy(out)
    return torch.as_tensor(np.array(X, dtype=np.float32, order="C", copy=True)).to(device)


def take_rows(X: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``X[rows]`` for an index array ``rows`` (R, B): shape (R, B, ...), the same values.

    ``index_select`` copies whole rows; advanced indexing copies element by
    element, several times slower on the CPU for KDDCUP's mini-batches.
    """
    return X.index_select(0, rows.reshape(-1)).view(*rows.shape, *X.shape[1:])


EVAL_CHUNK_ELEMENTS = 1 << 17  # CPU evaluation: input elements per run and chunk (512 KB of float32)


def eval_chunk_rows(chunk: int | None, X: torch.Tensor) -> int:
    """Rows per run in each chunk of an evaluation pass: ``chunk``, or chosen for ``X``.

    On the CPU a run's share of a chunk stays near :data:`EVAL_CHUNK_ELEMENTS`
    input elements (1110 KDDCUP rows): a chunk of 20 runs then stays in the
    cache and below the allocator's mmap threshold (:mod:`dagmm.engine.allocator`);
    16384-row chunks made scoring 20 KDDCUP runs 2-3x slower. A GPU takes
    16384 rows per run. The rows per run do not depend on how many runs are
    evaluated together, so a run scores the same alone as in a batch.
    """
    if chunk is not None:
        if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        return int(chunk)
    if X.device.type != "cpu":
        return 16384
    row = max(1, X[0].numel()) if len(X) else 1
    return int(min(16384, max(64, EVAL_CHUNK_ELEMENTS // row)))


def iter_chunks(X: torch.Tensor, idx: torch.Tensor, chunk: int | None = None):
    """Yield ``X[idx[:, a:b]]`` (R, rows, ...) chunk by chunk over the columns of ``idx`` (R, m).

    ``chunk``: rows per run at once (default: :func:`eval_chunk_rows`).
    """
    chunk = eval_chunk_rows(chunk, X)
    for s in range(0, idx.shape[1], chunk):
        yield take_rows(X, idx[:, s : s + chunk])


def run_index(idx, n_runs: int | None, device) -> torch.Tensor:
    """Row indices per run as a long tensor on ``device``.

    Parameters
    ----------
    idx : array-like or torch.Tensor, shape (R, n) or (n,)
        Each run's rows of the data table; one row of indices (n,) is one run.
    n_runs : int or None
        The number of runs expected (the module's R); None accepts any.
    device : torch.device or str

    Returns
    -------
    torch.Tensor, shape (R, n), dtype long
    """
    t = idx if isinstance(idx, torch.Tensor) else torch.as_tensor(np.asarray(idx))
    t = t.to(dtype=torch.long)
    if t.ndim == 1:
        t = t[None]
    if n_runs is not None and t.shape[0] != n_runs:
        raise ValueError(f"index array has {t.shape[0]} runs, the module {n_runs}")
    return t.to(device)


@torch.no_grad()
def fit_minmax(module: DAGMMModule, X: torch.Tensor, idx: torch.Tensor) -> None:
    """Set each run's scaling to min-max over its own training rows.

    Constant features get scale 1 (they are only shifted).
    """
    lo, hi = [], []
    for i in idx:  # index_select copies whole rows (faster than X[i]); one run's rows at a time
        rows = X.index_select(0, i)
        lo.append(rows.amin(0))
        hi.append(rows.amax(0))
    lo, hi = torch.stack(lo), torch.stack(hi)  # (R, ...)
    rng = hi - lo
    rng = torch.where(rng > 0, rng, torch.ones_like(rng))
    module.shift.copy_(lo[:, None])
    module.scale.copy_(rng[:, None])


@torch.no_grad()
def fit_zscore(module: DAGMMModule, X: torch.Tensor, idx: torch.Tensor) -> None:
    """Set each run's scaling to standardisation over its own training rows.

    Constant features get scale 1 (they are only centred).
    """
    mean, std = [], []
    for i in idx:  # one run's rows at a time
        rows = X.index_select(0, i).double()
        mean.append(rows.mean(0))
        std.append(rows.std(0, correction=0))
    mean, std = torch.stack(mean), torch.stack(std)  # (R, ...)
    std = torch.where(std > 0, std, torch.ones_like(std))
    module.shift.copy_(mean[:, None].float())
    module.scale.copy_(std[:, None].float())


def fit_scaling(module: DAGMMModule, X: torch.Tensor, idx: torch.Tensor, preprocessing: str | None) -> None:
    """Fit each run's input scaling on its training rows: "minmax", "zscore" or None (left as given)."""
    if preprocessing == "minmax":
        fit_minmax(module, X, idx)
    elif preprocessing == "zscore":
        fit_zscore(module, X, idx)
    elif preprocessing is not None:
        raise ValueError(f"preprocessing must be 'minmax', 'zscore' or None, got {preprocessing!r}")


@torch.no_grad()
def fit_norm_floor(module: DAGMMModule, X: torch.Tensor, idx: torch.Tensor, fraction: float) -> None:
    """Floor the norms of the reconstruction features at ``fraction`` of the typical scaled training row.

    Each run's floor is ``fraction`` times the root mean square norm of its
    scaled training rows (at least 1e-10), so the relative distance
    ``||x - x'|| / max(||x||, floor)`` of a row near zero (e.g. at the training
    minimum of every feature after min-max scaling) stays bounded by
    ``||x - x'|| / floor``. ``fraction = 0`` keeps the paper's features (floor 1e-10).
    """
    from .module import NORM_FLOOR

    if fraction < 0:
        raise ValueError(f"the norm floor fraction must be >= 0, got {fraction}")
    floors = []
    for r, i in enumerate(idx):  # one run's rows at a time
        rows = X.index_select(0, i).double()
        scaled = (rows - module.shift[r].double()) / module.scale[r].double()
        floors.append(fraction * scaled.flatten(1).pow(2).sum(1).mean().sqrt())
    module.norm_floor.copy_(torch.stack(floors).clamp_min(NORM_FLOOR)[:, None].float())


class Stepper:
    """One optimisation step of all runs: loss, backward, Adam.

    On CUDA the step is captured in a CUDA graph, one per batch shape (an
    epoch's full batches and its last, smaller one), and replayed: the
    network is tiny, so launching its ~300 kernels one by one from Python
    costs far more than running them. Small datasets (Thyroid, Arrhythmia)
    run thousands of epochs whose last batch is short, so that batch needs
    its own graph too. If capture fails, every step runs eagerly, with a
    warning. Elsewhere (the CPU) steps run eagerly, or compiled (``compile``).

    Parameters
    ----------
    module : DAGMMModule
    lr, lambda_energy, lambda_cov : float
    lambda_recon : float, default 1.0
    cuda_graph : bool, default True
        Use CUDA graphs when the module is on a CUDA device.
    max_graphs : int, default 4
        Batch shapes beyond this many run eagerly.
    compile : bool, default False
        Where CUDA graphs are not used (the CPU), run the loss and its
        backward through ``torch.compile`` (inductor, which needs a C++
        compiler): the elementwise work of a step is fused into a few
        kernels. Shapes are dynamic, so a network compiles once per process
        (tens of seconds) for every batch size and run count, with separate
        versions only for sizes 0 and 1. Results agree with eager steps to
        float rounding, not bitwise. While a compiled step runs, dynamo's
        recompile limit is at least :data:`COMPILE_LIMIT` and inductor's c-shim
        notices are filtered (:func:`compile_settings`); both are put back
        afterwards unless :func:`dagmm.engine.allocator.tune_process` set them for
        the whole process. If compiling fails, the step runs
        eagerly, with a warning, and later steppers in the process do not
        try again.

    Only parameters with ``requires_grad`` are optimised (freeze a part of
    the module by switching it off before building the stepper).
    """

    def __init__(self, module: DAGMMModule, lr: float, lambda_energy: float, lambda_cov: float, cuda_graph: bool = True,
                 lambda_recon: float = 1.0, max_graphs: int = 4, compile: bool = False):
        self.module = module
        self.lambdas = dict(lambda_energy=lambda_energy, lambda_cov=lambda_cov, lambda_recon=lambda_recon)
        self.use_graph = cuda_graph and next(module.parameters()).device.type == "cuda"
        self.compiled = bool(compile) and not self.use_graph and not _COMPILE_FAILED
        if self.compiled:
            # dynamic: every batch size and run count; cpp_wrapper: the code between the kernels is
            # C++ too (inductor's Python wrapper was a visible share of a KDDCUP step); without it if that fails
            self._cpp_wrapper = not _CPP_WRAPPER_FAILED
            self._compile()
        self._compiled_calls = 0
        self._feature_major: bool | None = None
        params = [p for p in module.parameters() if p.requires_grad]
        # off CUDA graphs, one flat parameter (the module's are views of it, and their
        # gradients views of one flat gradient): Adam's per-parameter Python work ran every step
        flat = None if self.use_graph else _flatten_parameters(params)
        self._flat_grad = None if flat is None else flat.grad
        if flat is not None:
            params = [flat]
        self.opt = torch.optim.Adam(params, lr=lr, fused=True, capturable=self.use_graph)
        self.max_graphs = max_graphs
        self.graphs: dict[tuple, dict] = {}  # batch shape -> graph and its static tensors
        self._checked_views = False
        self._warmup: dict[tuple, int] = {}  # batch shape -> eager steps left before capture (CUDA's recipe)

    def _compile(self) -> None:
        self.loss_fn = torch.compile(self.module.loss, dynamic=True, options={"cpp_wrapper": self._cpp_wrapper})

    def _eager(self, xb, mb, nb=None, yb=None):
        global _COMPILE_FAILED, _CPP_WRAPPER_FAILED
        if self.compiled:
            try:
                with compile_settings():
                    if self._compiled_calls:
                        loss, n_ret = self._loss_backward(self.loss_fn, xb, mb, nb, yb)
                    else:  # the first call compiles forward and backward
                        with warnings.catch_warnings():  # inductor's own deprecation notices, not the user's concern
                            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\._inductor")
                            loss, n_ret = self._loss_backward(self.loss_fn, xb, mb, nb, yb)
                self._compiled_calls += 1
            except Exception as exc:  # inductor's errors (no C++ compiler, ...) have no common base class
                if self._cpp_wrapper:  # once more with inductor's Python wrapper, for this and later steppers
                    _CPP_WRAPPER_FAILED = True
                    self._cpp_wrapper = False
                    self._compile()
                    return self._eager(xb, mb, nb, yb)
                _COMPILE_FAILED = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); training eagerly",
                              RuntimeWarning, stacklevel=3)
                self.compiled = False
                # nothing has been updated yet: the step is redone eagerly from the same parameters
                loss, n_ret = self._loss_backward(self.module.loss, xb, mb, nb, yb)
        else:
            loss, n_ret = self._loss_backward(self.module.loss, xb, mb, nb, yb)
        self.opt.step()
        return loss.detach(), n_ret

    def _loss_backward(self, loss_fn, xb, mb, nb, yb):
        layout = contextlib.nullcontext()
        if self.compiled and loss_fn is self.loss_fn:
            # one layout for every batch of the fit (nn.feature_major_steps), from the first, full one
            if self._feature_major is None:
                self._feature_major = xb.dim() == 3 and xb.shape[1] >= FEATURE_MAJOR_MIN_BATCH
            layout = feature_major_steps(self._feature_major)
        with layout:
            loss, n_ret = loss_fn(xb, mb, nb, yb, **self.lambdas)
        if self._flat_grad is not None:  # backward adds into the views of the flat gradient
            self._flat_grad.zero_()
            loss.sum().backward()
            if not self._checked_views:
                _check_gradient_views(self.module, self._flat_grad)
                self._checked_views = True
        else:
            # keep .grad tensors in place once a graph exists: its replay writes into its own
            self.opt.zero_grad(set_to_none=not self.graphs)
            loss.sum().backward()
        return loss, n_ret

    def _capture(self, xb, mb, nb=None, yb=None) -> dict:
        static = [None if t is None else t.clone() for t in (xb, mb, nb, yb)]
        # fresh .grad tensors, allocated inside this graph's memory pool: backward
        # then writes (not accumulates) into them on every replay
        self.opt.zero_grad(set_to_none=True)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            loss, n_ret = self.module.loss(*static, **self.lambdas)
            loss.sum().backward()
            self.opt.step()
        entry = dict(graph=g, inputs=static, loss=loss.detach(), n_ret=n_ret)
        self.graphs[tuple(xb.shape)] = entry
        return entry

    def _side_stream_eager(self, *args):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self._eager(*args)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def __call__(self, xb: torch.Tensor, mb: torch.Tensor | None, nb: torch.Tensor | None = None,
                 yb: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on batch ``xb`` (R, B, ...) with dropout mask ``mb``, compressor noise ``nb``
        and anomaly labels ``yb`` (R, B).

        Returns (loss (R,), n_retried).
        """
        args = (xb, mb, nb, yb)
        if not self.use_graph:
            return self._eager(*args)
        shape = tuple(xb.shape)
        entry = self.graphs.get(shape)
        if entry is None:
            if len(self.graphs) >= self.max_graphs:
                return self._eager(*args)
            left = self._warmup.setdefault(shape, 3)
            if left > 0:
                self._warmup[shape] = left - 1
                return self._side_stream_eager(*args)
            try:
                entry = self._capture(*args)  # records only; the step itself runs below
            except RuntimeError as exc:  # e.g. an op that cannot be captured
                warnings.warn(f"CUDA graph capture failed ({exc}); training eagerly", RuntimeWarning, stacklevel=2)
                self.use_graph = False
                self.graphs.clear()
                torch.cuda.synchronize()
                return self._eager(*args)
        for static, new in zip(entry["inputs"], args):
            if new is not None:
                static.copy_(new)
        entry["graph"].replay()
        return entry["loss"].clone(), entry["n_ret"].clone()


class _NoShimNotice(logging.Filter):
    """Drops inductor's notice that an op (the Cholesky solve) runs through its generic C++ fallback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "missing a c-shim implementation" not in record.getMessage()


def quiet_cpp_wrapper_notices() -> None:
    """Process-wide: filter inductor's c-shim notices (called by :func:`dagmm.engine.allocator.tune_process`)."""
    log = logging.getLogger("torch._inductor.ir")
    if not any(isinstance(f, _NoShimNotice) for f in log.filters):
        log.addFilter(_NoShimNotice())


def raise_compile_limit() -> None:
    """Process-wide: dynamo's ``recompile_limit`` to at least :data:`COMPILE_LIMIT`
    (called by :func:`dagmm.engine.allocator.tune_process`)."""
    from torch._dynamo import config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, COMPILE_LIMIT)


@contextlib.contextmanager
def compile_settings():
    """What a compiled step needs while it runs (its first call compiles), put back afterwards.

    Every stepper shares the compiled versions of ``DAGMMModule.loss`` (one
    per network, mixture and loss weights): dynamo's default recompile limit
    of 8 would quietly fall back to eager, so it is at least
    :data:`COMPILE_LIMIT` inside; and inductor's notice that the Cholesky
    solve runs through its generic C++ fallback is filtered. Nothing is
    changed where :func:`dagmm.engine.allocator.tune_process` has set both for the
    whole process. A few microseconds per step otherwise.
    """
    from torch._dynamo import config as dynamo_config

    log = logging.getLogger("torch._inductor.ir")
    added = None
    if not any(isinstance(f, _NoShimNotice) for f in log.filters):
        added = _NoShimNotice()
        log.addFilter(added)
    limit = dynamo_config.recompile_limit
    if limit < COMPILE_LIMIT:
        dynamo_config.recompile_limit = COMPILE_LIMIT
    try:
        yield
    finally:
        if limit < COMPILE_LIMIT:
            dynamo_config.recompile_limit = limit
        if added is not None:
            log.removeFilter(added)


def _flatten_parameters(params: list) -> nn.Parameter | None:
    """Move ``params`` into one flat storage (each becomes a view of it, values unchanged) and give
    each a ``.grad`` that is a view of one flat, zeroed gradient: returns the flat parameter, its
    ``.grad`` that flat gradient.

    Adam then updates one tensor per step instead of one per layer; its arithmetic is elementwise,
    so every value is the same as with separate tensors. None (nothing changed) unless the
    parameters are dense, contiguous and of one dtype and device.
    """
    if not params or any(not p.is_contiguous() or p.is_sparse or p.dtype != params[0].dtype
                         or p.device != params[0].device for p in params):
        return None
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    flat_grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        p.grad = flat_grad[offset : offset + n].view_as(p)
        offset += n
    flat = nn.Parameter(flat)
    flat.grad = flat_grad
    return flat


def _check_gradient_views(module: nn.Module, flat_grad: torch.Tensor) -> None:
    """Fail loudly if backward replaced a parameter's gradient instead of adding into its view."""
    lo, hi = flat_grad.data_ptr(), flat_grad.data_ptr() + flat_grad.numel() * flat_grad.element_size()
    for name, p in module.named_parameters():
        if p.requires_grad and (p.grad is None or not lo <= p.grad.data_ptr() < hi):
            raise RuntimeError(f"the gradient of {name} no longer shares the optimiser's flat gradient")


def train(
    module: DAGMMModule,
    X: torch.Tensor,
    train_idx,
    *,
    seeds: Sequence[int],
    epochs: int,
    batch_size: int,
    lr: float,
    lambda_energy: float,
    lambda_cov: float,
    lambda_recon: float = 1.0,
    labels: torch.Tensor | None = None,
    verbose: bool = False,
    desc: str = "DAGMM",
    cuda_graph: bool = True,
    checkpoints: Sequence[int] = (),
    on_checkpoint=None,
    compile: bool = False,
) -> dict:
    """Train every run of ``module`` on its own rows of ``X`` with Adam.

    Parameters
    ----------
    module : DAGMMModule with R runs, already on ``X``'s device and initialised
    X : Tensor (N, ...) on the training device
    train_idx : array (R, n) or (n,)
        Row indices of each run's training set (equal sizes).
    seeds : sequence of int, length R
        Seeds of the runs' shuffling and dropout generators.
    epochs, batch_size : int
        The last, smaller batch of an epoch is kept (as ``DataLoader`` does).
    lr, lambda_energy, lambda_cov, lambda_recon : float
    labels : Tensor (N,), optional
        1 for rows of ``X`` that are labelled anomalies (used by a module
        with an ``anomaly_loss``; see :meth:`DAGMMModule.loss`).
    cuda_graph : bool, default True
        On CUDA, replay full-size steps from a captured graph (see :class:`Stepper`).
    compile : bool, default False
        Elsewhere (the CPU), compile the step with ``torch.compile`` (see :class:`Stepper`).

    checkpoints, on_checkpoint : epochs and a callable ``on_checkpoint(module, epoch)``
        called after each of those epochs (the module is put back in training
        mode afterwards); used to evaluate one training run at several lengths.

    Parameters with ``requires_grad=False`` stay fixed (e.g. a pre-trained,
    frozen compression network).

    Returns
    -------
    dict with ``loss`` (ndarray (epochs, R), mean loss per epoch) and
    ``failed`` (bool ndarray (R,), runs whose loss became NaN or inf).
    """
    device = X.device
    idx = run_index(train_idx, module.n_runs, device)
    R, n = idx.shape
    shuffle_gens = make_generators(seeds, device)
    drop_gens = make_generators(seeds, device, DROPOUT_SEED_OFFSET)
    noise_gens = make_generators(seeds, device, NOISE_SEED_OFFSET)
    p = module.estimation.dropout
    h = module.estimation.hidden
    nd = module.noise_dim
    step = Stepper(module, lr, lambda_energy, lambda_cov, cuda_graph, lambda_recon, compile=compile)
    retried = torch.zeros((), dtype=torch.long, device=device)

    def draw(E):  # dropout masks and compressor noise of E epochs, each run from its own generators
        masks = dropout_masks(drop_gens, E, n, h, p, device) if p > 0 else None  # (E, R, n, h)
        noise = None
        if nd:
            # one call per epoch: randn's stream does not split, so drawing E epochs at once would
            # depend on how epochs are chunked (checkpoints change the chunks)
            noise = torch.stack([torch.stack([torch.randn(n, nd, generator=g, device=device) for _ in range(E)])
                                 for g in noise_gens], 1)  # (E, R, n, nd)
        return masks, noise

    def batch_step(rows, e, s, drawn):
        masks, noise = drawn
        b = slice(s, s + rows.shape[1])
        loss, n_ret = step(take_rows(X, rows), None if masks is None else masks[e, :, b],
                           None if noise is None else noise[e, :, b], None if labels is None else labels[rows])
        retried.add_(n_ret)
        return loss

    def checkpoint(epoch):
        on_checkpoint(module, epoch)
        module.train()

    module.train()
    history, failed = run_epochs(idx, epochs=epochs, batch_size=batch_size, shuffle_gens=shuffle_gens, step=batch_step,
                                 draw=draw, checkpoints=checkpoints if on_checkpoint else (), on_checkpoint=checkpoint,
                                 verbose=verbose, desc=desc)
    if int(retried) > 0:
        warnings.warn(
            f"{int(retried)} mini-batch covariances needed more diagonal jitter than "
            f"eps={module.mixture.eps:g} during training",
            CovarianceJitterWarning,
            stacklevel=2,
        )
    module.eval()
    return {"loss": history, "failed": failed}


def run_epochs(idx: torch.Tensor, *, epochs: int, batch_size: int, shuffle_gens: Sequence[torch.Generator],
               step, draw=None, checkpoints: Sequence[int] = (), on_checkpoint=None, verbose: bool = False,
               desc: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The epoch loop every torch method of the study trains with: R runs, shuffled mini-batches.

    Each epoch visits each run's rows in the order of a fresh permutation from
    the run's own shuffling generator, in mini-batches of ``batch_size`` (the
    last, smaller batch is kept, as ``DataLoader`` does). Permutations (and
    whatever ``draw`` adds) are drawn for several epochs at once, and the
    host looks at the losses once per such chunk: small data sets run
    thousands of tiny epochs.

    Parameters
    ----------
    idx : Tensor (R, n), long
        Each run's training rows (:func:`run_index`).
    epochs, batch_size : int
    shuffle_gens : R generators, one per run
    step : callable ``step(rows (R, B), epoch_in_chunk, start, drawn) -> loss (R,)``
        One optimiser step on the rows ``rows`` (batch ``start:start + B`` of
        the epoch), returning each run's loss (detached).
    draw : callable ``draw(E) -> drawn``, optional
        Per-chunk random draws for ``E`` epochs (DAGMM's dropout masks and noise), passed to ``step``.
    checkpoints, on_checkpoint : epochs and a callable ``on_checkpoint(epoch)`` run after each of them
    verbose, desc : a progress bar and its label

    Returns
    -------
    loss : ndarray (epochs, R), float64, each run's mean loss per epoch
    failed : bool ndarray (R,), runs whose loss became NaN or inf
    """
    device = idx.device
    R, n = idx.shape
    history = torch.zeros(epochs, R, device=device)
    failed = np.zeros(R, dtype=bool)
    chunk = max(1, min(epochs, -(-(1 << 16) // n)))
    stops = sorted({int(c) for c in checkpoints if 0 < int(c) <= epochs})
    steps_per_epoch = -(-n // batch_size)
    bar = None
    if verbose and epochs > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=desc, leave=False)
    e0 = 0
    while e0 < epochs:
        E = min(chunk, epochs - e0, *(c - e0 for c in stops if c > e0))
        perms = epoch_permutations(shuffle_gens, E, n, device)  # (E, R, n)
        drawn = draw(E) if draw is not None else None
        for e in range(E):
            rows = idx.gather(1, perms[e])  # (R, n)
            total = torch.zeros(R, device=device)
            for s in range(0, n, batch_size):
                total += step(rows[:, s : s + batch_size], e, s, drawn)
            history[e0 + e] = total / steps_per_epoch
        chunk_loss = history[e0 : e0 + E].cpu().numpy()  # one host sync per chunk
        failed |= ~np.isfinite(chunk_loss).all(0)
        if bar is not None:
            bar.update(E)
            bar.set_postfix(loss=float(np.nanmean(chunk_loss[-1])), failed=int(failed.sum()))
        e0 += E
        if on_checkpoint is not None and e0 in stops:
            on_checkpoint(e0)
    if bar is not None:
        bar.close()
    return history.cpu().numpy().astype(np.float64), failed


@torch.no_grad()
def embed(module: DAGMMModule, X: torch.Tensor, idx, chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-dimensional representation z (R, m, D) and memberships gamma (R, m, K), eval mode.

    ``chunk``: rows per run evaluated at once (default: :func:`eval_chunk_rows`).
    """
    module.eval()
    idx = run_index(idx, module.n_runs, X.device)
    zs, gs = [], []
    for xb in iter_chunks(X, idx, chunk):
        out = module(xb)
        zs.append(out.z)
        gs.append(out.gamma)
    return torch.cat(zs, 1), torch.cat(gs, 1)


@torch.no_grad()
def estimate_mixture(module: DAGMMModule, X: torch.Tensor, train_idx, chunk: int | None = None) -> None:
    """Fit the scoring mixture over each run's *whole* training set (float64 sums)."""
    z, gamma = embed(module, X, train_idx, chunk)
    module.set_params(module.mixture.estimate(gamma.double(), z.double()))


@torch.no_grad()
def compute_energy(module: DAGMMModule, X: torch.Tensor, idx, chunk: int | None = None) -> np.ndarray:
    """Sample energies (R, m) of the rows ``idx`` (R, m) under each run's fitted mixture."""
    return compute_scores(module, X, idx, "energy", chunk)


@torch.no_grad()
def compute_scores(module: DAGMMModule, X: torch.Tensor, idx, kind: str = "energy", chunk: int | None = None) -> np.ndarray:
    """Per-sample scores (R, m) of the rows ``idx`` (R, m), higher = more anomalous.

    ``kind``: ``"energy"`` (sample energy under the fitted mixture) or
    ``"recon"`` (squared reconstruction error in the scaled input space).
    """
    fn = {"energy": module.energy, "recon": module.recon_error}.get(kind)
    if fn is None:
        raise ValueError(f"kind must be 'energy' or 'recon', got {kind!r}")
    module.eval()
    idx = run_index(idx, module.n_runs, X.device)
    out = [fn(xb) for xb in iter_chunks(X, idx, chunk)]
    return torch.cat(out, 1).cpu().numpy()
