"""Table 2 (every method of the paper and modern detectors) and Table 3 (contaminated
training data) as functions the notebooks call: per-dataset settings, profiles,
and the runs of each method under the paper's protocol.

Settings
--------
* DAGMM and its ablations (GMM-EN, PAE, E2E-AE, PAE-GMM-EM, PAE-GMM, DAGMM-p,
  DAGMM-NVI): the paper's per-dataset setting (:func:`dagmm.paper_setting`);
  pre-training, where there is one, lasts as long as the paper's training
  (so PAE is exactly the pre-training of the three pre-trained variants).
* DSEBM, DCN, Deep SVDD: the paper gives no training budget. Ours is about
  4,000 Adam steps per run at learning rate 1e-3 with the dataset's DAGMM
  batch size (:data:`OWN_EPOCHS`); DCN pre-trains its autoencoder for the
  same budget first, then trains jointly for it. DCN uses the dataset's
  DAGMM compression network and K.
* OC-SVM: RBF kernel, ``nu = 0.1`` and ``gamma = "scale"`` (1 / (n_features *
  variance of the scaled training data)), fixed, never tuned on test labels;
  fitted on at most 10,000 training rows drawn at random per run.
* LOF: ``novelty=True``, 20 neighbours, at most 10,000 training rows.
* Isolation Forest: scikit-learn's defaults. ECOD: no parameters.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

from ..configs import paper_setting
from ..datasets import draw_rows
from ..protocol import RunSplit, make_splits, run_estimator, run_protocol
from ..engine.training import compute_scores
from .ablations import DAGMMVariant
from .base import Timer
from .classic import ECOD, SklearnDetector
from .dcn import DCN
from .deep_svdd import DeepSVDD
from .dsebm import DSEBM

__all__ = [
    "REGISTRY", "Setting", "SHARED_TRAINING", "GROUPS", "SHALLOW", "training_plan", "shortened",
    "PAPER_METHODS", "MODERN_METHODS", "ALL_METHODS", "OWN_EPOCHS", "PROFILES", "make_estimator",
    "run_methods", "run_levels", "contaminated_split", "contaminated_splits", "CONTAMINATION_METHODS", "profile_splits", "profile_runs", "profile_seeds",
    "select_runs", "resolve_workers",
    "shrink_split", "settings_table", "training_half_anomalies", "aggregate_levels",
]

# Epochs of DSEBM, DCN (each stage) and Deep SVDD: about 4,000 Adam steps per run
# (KDDCUP ~198k training rows / 1024 = 194 steps an epoch; KDDCUP-Rev ~48.6k / 1024
# = 48; Thyroid 1,839 / 1024 = 2; Arrhythmia 193 / 128 = 2).
OWN_EPOCHS = {"kddcup": 20, "kddcup_rev": 80, "thyroid": 2000, "arrhythmia": 2000}
OWN_LR = 1e-3
SHALLOW_MAX_SAMPLES = 10_000
OCSVM_NU = 0.1

PROFILES = {
    "full": dict(n_runs=None, dagmm_epochs={}, own_epochs=OWN_EPOCHS, max_samples=SHALLOW_MAX_SAMPLES),
    # smoke: a fast pass through every code path; runs also use a random subset
    # of at most 2,000 training and 4,000 test rows (see :func:`profile_splits`)
    "smoke": dict(n_runs=2, dagmm_epochs={"kddcup": 1, "kddcup_rev": 1, "thyroid": 4, "arrhythmia": 4},
                  own_epochs={"kddcup": 1, "kddcup_rev": 1, "thyroid": 4, "arrhythmia": 4}, max_samples=1000,
                  max_rows=(2000, 4000)),
}
SMOKE_SEED_TAG = 15_485_863


def _profile(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return PROFILES[profile]


@dataclass(frozen=True)
class Setting:
    """What a method's estimator is built from: the dataset's paper setting under a profile.

    Attributes
    ----------
    dataset : str
    profile : str, ``"full"`` or ``"smoke"`` (:data:`PROFILES`)
    device, random_state : passed to the estimators
    contamination : float, optional
        The anomaly ratio ``rho``; by default the paper's for the dataset (a data set the paper
        does not have, e.g. an ADBench set, must give it, and can use the shallow detectors only).
    """

    dataset: str
    profile: str = "full"
    device: str = "auto"
    random_state: object = None
    contamination: float | None = None

    @property
    def paper(self) -> dict:
        """The paper's setting of the dataset (:func:`dagmm.configs.paper_setting`)."""
        return paper_setting(self.dataset)

    @property
    def rho(self) -> float:
        """The dataset's anomaly ratio (every estimator's ``contamination``): as given, else as the paper states it."""
        return self.paper["contamination"] if self.contamination is None else self.contamination

    @property
    def epochs(self) -> int:
        """DAGMM's epochs on the dataset under the profile."""
        return _profile(self.profile)["dagmm_epochs"].get(self.dataset, self.paper["epochs"])

    def dagmm(self, **kw) -> DAGMMVariant:
        """DAGMM's paper setting (its network, mixture, epochs and rho), changed by ``kw``."""
        return DAGMMVariant(**{**self.paper, "epochs": self.epochs, "device": self.device,
                               "random_state": self.random_state, **kw})

    @property
    def own(self) -> dict:
        """The common parameters of the torch baselines that are not DAGMM (DSEBM, DCN, Deep SVDD):
        :data:`OWN_EPOCHS`, the dataset's batch size, :data:`OWN_LR`."""
        p = _profile(self.profile)
        return dict(epochs=p["own_epochs"].get(self.dataset, OWN_EPOCHS[self.dataset]), batch_size=self.paper["batch_size"],
                    lr=OWN_LR, contamination=self.rho, device=self.device, random_state=self.random_state)

    def shallow(self, detector, *, subsample: bool = False, preprocessing: str | None = None) -> SklearnDetector:
        """A scikit-learn detector under the protocol; ``subsample``: fitted on at most the profile's
        ``max_samples`` training rows."""
        max_samples = _profile(self.profile)["max_samples"] if subsample else None
        return SklearnDetector(detector, max_samples=max_samples, preprocessing=preprocessing, contamination=self.rho,
                               random_state=self.random_state)


# Every method of notebooks 01b and 01c: its estimator for a dataset (from a Setting), in the tables'
# order: the paper's Table 2 (DAGMM last), then the modern detectors. A new method is one estimator
# (a module of this package, or any scikit-learn detector) and one line here; a torch estimator with
# ``_fit_runs``/``_score_runs`` trains its runs together, any other runs one run after another.
REGISTRY: dict[str, Callable[[Setting], object]] = {
    "OC-SVM": lambda c: c.shallow(OneClassSVM(kernel="rbf", nu=OCSVM_NU, gamma="scale"), subsample=True,
                                  preprocessing="minmax"),
    "DSEBM-r": lambda c: DSEBM(scoring="recon", **c.own),
    "DSEBM-e": lambda c: DSEBM(scoring="energy", **c.own),
    "DCN": lambda c: DCN(hidden=c.paper["hidden"], latent_dim=c.paper["latent_dim"], n_clusters=c.paper["n_components"],
                         pretrain_epochs=c.own["epochs"], **c.own),
    "GMM-EN": lambda c: c.dagmm(lambda_recon=0.0),
    "PAE": lambda c: c.dagmm(scoring="recon", lambda_energy=0.0, lambda_cov=0.0),
    "E2E-AE": lambda c: c.dagmm(scoring="recon"),
    "PAE-GMM-EM": lambda c: c.dagmm(pretrain_epochs=c.epochs, second_stage="em"),
    "PAE-GMM": lambda c: c.dagmm(pretrain_epochs=c.epochs, second_stage="frozen"),
    "DAGMM-p": lambda c: c.dagmm(pretrain_epochs=c.epochs, second_stage="finetune"),
    "DAGMM-NVI": lambda c: c.dagmm(objective="nvi"),
    "DAGMM": lambda c: c.dagmm(),
    "Isolation Forest": lambda c: c.shallow(IsolationForest(n_jobs=-1)),
    "LOF": lambda c: c.shallow(LocalOutlierFactor(n_neighbors=20, novelty=True), subsample=True, preprocessing="minmax"),
    "ECOD": lambda c: ECOD(contamination=c.rho),
    "Deep SVDD": lambda c: DeepSVDD(**c.own),
}
PAPER_METHODS = ("OC-SVM", "DSEBM-r", "DSEBM-e", "DCN", "GMM-EN", "PAE", "E2E-AE", "PAE-GMM-EM", "PAE-GMM",
                 "DAGMM-p", "DAGMM-NVI", "DAGMM")  # the paper's Table 2, in its order
ALL_METHODS = tuple(REGISTRY)
MODERN_METHODS = tuple(m for m in ALL_METHODS if m not in PAPER_METHODS)
CONTAMINATION_METHODS = ("DAGMM", "DCN", "DSEBM-e", "OC-SVM")  # the paper's Table 3

# Methods that share one training: one training scored several ways, or one pre-training followed
# by several second stages (the first method's estimator trains and the others read it out; the
# pre-trained group pre-trains with DAGMM-p's estimator).
SHARED_TRAINING = (
    ("DAGMM", "E2E-AE"),
    ("PAE", "PAE-GMM-EM", "PAE-GMM", "DAGMM-p"),
    ("DSEBM-r", "DSEBM-e"),
)


def _trains_runs_together(method: str) -> bool:
    return hasattr(REGISTRY[method](Setting("thyroid")), "_fit_runs")


def training_plan() -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """How :func:`run_methods` runs the methods of :data:`REGISTRY` (as it is now):
    the training groups (:data:`SHARED_TRAINING`, then every other batched torch method alone)
    and the methods that run one run after another (scikit-learn's detectors, ECOD)."""
    shared = {m for g in SHARED_TRAINING for m in g}
    singles = [m for m in REGISTRY if m not in shared]
    together = [m for m in singles if _trains_runs_together(m)]
    return SHARED_TRAINING + tuple((m,) for m in together), tuple(m for m in singles if m not in together)


GROUPS, SHALLOW = training_plan()


def shortened(methods: Sequence[str], epochs: int) -> dict[str, dict]:
    """``overrides`` for :func:`run_methods` that train ``methods`` (a training group) for ``epochs``
    epochs: every epoch count of each method's estimator, and in the pre-trained group DAGMM-p's
    entry, which sets the shared pre-training too (e.g. to time a group on a short training)."""
    out = {}
    for m in methods:
        params = REGISTRY[m](Setting("thyroid")).get_params()
        out[m] = {k: epochs for k in ("epochs", "pretrain_epochs") if k in params and (k == "epochs" or params[k])}
    if "PAE" in methods:
        out["DAGMM-p"] = {"epochs": epochs, "pretrain_epochs": epochs}
    return out


def make_estimator(method: str, dataset: str, *, profile: str = "full", device: str = "auto", random_state=None, **overrides):
    """The unfitted estimator of ``method`` (:data:`REGISTRY`) with its setting for ``dataset``.

    ``overrides`` replace parameters of the estimator (e.g. ``epochs``).
    ``contamination`` (the threshold of :meth:`predict`) is the dataset's rho.
    """
    if method not in REGISTRY:
        raise ValueError(f"unknown method {method!r}; known: {list(REGISTRY)}")
    _profile(profile)  # a known profile
    est = REGISTRY[method](Setting(dataset, profile, device, random_state))
    return est.set_params(**overrides) if overrides else est


def _group_fit_scores(group: Sequence[str], wanted: Sequence[str], dataset: str, profile: str, device: str, verbose: bool,
                      overrides: dict | None = None):
    """``fit_scores`` for :func:`dagmm.protocol.run_protocol` of one training group: one training
    (or one pre-training) read out as each method of the group in ``wanted``."""
    wanted = [m for m in group if m in wanted]
    overrides = overrides or {}

    def make(m, dataset, **kw):
        return make_estimator(m, dataset, **{**kw, **overrides.get(m, {})})
    desc = f"{'/'.join(wanted)} {dataset}"

    def fit_scores(X, train_idx, seeds, test_idx, keep=()):
        out = {}
        if group[0] == "PAE":  # one pre-training, then each second stage on a copy
            base = make("DAGMM-p", dataset, profile=profile, device=device).set_params(verbose=verbose)
            with Timer() as t_pre:
                module, h1, Xt = base._pretrain(X, train_idx, seeds, desc=f"pre-training {dataset}")
            for m in wanted:
                with Timer() as t:
                    if m == "PAE":
                        mod, h2 = module, {"failed": np.zeros(len(seeds), bool)}
                        scores = compute_scores(mod, Xt, test_idx, "recon")
                    else:
                        est = make(m, dataset, profile=profile, device=device).set_params(verbose=verbose)
                        mod = copy.deepcopy(module)
                        h2 = est._second_stage(mod, Xt, train_idx, seeds, desc=f"{m} {dataset}")
                        scores = est._score_runs(mod, Xt, test_idx)
                out[m] = dict(scores=scores, failed=h1["failed"] | h2["failed"], seconds=t_pre.seconds + t.seconds)
            return out
        est = make(group[0], dataset, profile=profile, device=device).set_params(verbose=verbose)
        with Timer() as t_fit:
            module, history, Xt = est._fit_runs(X, train_idx, seeds, desc=desc)
        for m in wanted:
            with Timer() as t:
                scores = est._score_runs(module, Xt, test_idx, score=make(m, dataset).get_params().get("scoring"))
            out[m] = dict(scores=scores, failed=history["failed"], seconds=t_fit.seconds + t.seconds)
        return out

    return fit_scores


def _run_group(*, dataset, X, y, splits, group, methods, profile, device, max_parallel, overrides, rho, threads=None,
               tuning=None):
    """The per-run rows of one training group (:data:`GROUPS`); in a worker process of
    :func:`run_methods` (``workers > 1``), with ``threads`` torch and BLAS threads there, and the
    process tuning of the parent (``tuning``: the arguments of its :func:`dagmm.engine.allocator.tune_process`)."""
    if tuning is not None:
        from ..engine.allocator import tune_process

        tune_process(**tuning)
    if threads is None:
        fs = _group_fit_scores(group, methods, dataset, profile, device, verbose=False, overrides=overrides)
        return run_protocol(dataset, X, y, splits, fs, rho=rho, max_parallel=max_parallel)[0]
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):  # e.g. PAE-GMM-EM's EM
        return _run_group(dataset=dataset, X=X, y=y, splits=splits, group=group, methods=methods, profile=profile,
                          device=device, max_parallel=max_parallel, overrides=overrides, rho=rho)


def run_methods(
    dataset: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[RunSplit],
    methods: Sequence[str] = ALL_METHODS,
    *,
    profile: str = "full",
    device: str = "auto",
    max_parallel: int | None = None,
    verbose: bool = True,
    overrides: dict[str, dict] | None = None,
    n_jobs: int = 1,
    on_result: Callable[[pd.DataFrame], None] | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Every run of each method in ``methods`` on one dataset, under the paper's protocol.

    The torch methods train their runs together (``max_parallel`` at a time);
    the shallow ones run one after another. Methods in one training group
    share it (see :data:`GROUPS`); a method's ``seconds`` is what it alone
    would cost (shared training counted in full).

    Parameters
    ----------
    dataset : the dataset's name (its paper setting and rho)
    X, y : the dataset's base arrays (:func:`dagmm.datasets.load_base`)
    splits : one :class:`dagmm.protocol.RunSplit` per run
    overrides : {method: {parameter: value}}, optional
        Replace parameters of a method's estimator (e.g. fewer epochs to time it).
        In the pre-trained group, "DAGMM-p"'s entry also sets the shared pre-training.
    n_jobs : int, default 1
        Threads over which the runs of the shallow methods are spread (joblib;
        -1: every core, or ``OMP_NUM_THREADS`` when set, :func:`resolve_n_jobs`);
        their results do not depend on it.
    on_result : callable, optional
        Called with the per-run rows of each training group or shallow method
        as soon as they are done (e.g. to save them, so that a crash in a later
        method loses nothing already computed). Always called in this process.
    workers : int, default 1
        Training groups run side by side in up to this many worker processes
        (from a fork server; each with this process's number of torch threads), while the
        shallow methods run here. The unit of work is one chunk of a group's runs,
        ``max_parallel`` of them (the chunks that one process trains one after another),
        so a group with many runs is shared out too. A GPU is mostly idle under one
        of these small networks, so on a GPU several groups train in about the time
        of one; on a CPU, workers with one torch thread each put every core to work
        (``benchmarks/workers_time.py``). Each run's result is what it gives with
        ``workers=1`` (exactly, on the CPU at the same torch and BLAS thread
        counts; tested). Groups whose chunks are all done are handed to ``on_result``
        between shallow methods and after them; if this process fails or is
        interrupted, those done are handed over and the workers are stopped.

    Returns
    -------
    per_run : DataFrame, one row per method and run, in the order of ``methods``
    """
    unknown = [m for m in methods if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(REGISTRY)}")
    rho = paper_setting(dataset)["contamination"]
    all_groups, shallow = training_plan()
    frames = []

    def log(df):
        if verbose:
            for m, d in df.groupby("method", sort=False):
                print(f"{dataset:>11} | {m:<17} | F1 {d.f1.mean():.4f} ± {d.f1.std():.4f} | AUROC {d.auroc.mean():.4f} | "
                      f"failed {int(d.failed.sum())} | {d.seconds.sum():.1f} s", flush=True)

    if int(workers) < 1:
        raise ValueError(f"workers={workers}: expected at least 1 worker process")

    def done(df):
        frames.append(df)
        log(df)
        if on_result is not None:
            on_result(df)

    def run_shallow(between=lambda: None):
        for m in (m for m in shallow if m in methods):
            done(_run_shallow(dataset, X, y, splits, m, profile, rho, (overrides or {}).get(m, {}), n_jobs))
            between()

    groups = [g for g in all_groups if any(m in methods for m in g)]
    splits = list(splits)
    task = dict(dataset=dataset, X=X, y=y, methods=list(methods), profile=profile, device=device,
                max_parallel=max_parallel, overrides=overrides, rho=rho)
    # with workers, a unit of work is one chunk of a group's runs (max_parallel of them, the chunks the
    # protocol trains one after another anyway), so that one long group is shared out too
    chunk = max_parallel or len(splits)
    starts = list(range(0, len(splits), chunk)) if splits else []
    if int(workers) == 1 or len(groups) * len(starts) < 2:
        for group in groups:
            done(_run_group(group=group, splits=splits, **task))
        run_shallow()
    else:
        import contextlib
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        import torch

        # not forked from this process (a forked child cannot use CUDA once the parent has): from a fresh
        # fork server, which never touches CUDA ("spawn" would do as well)
        ctx = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(min(int(workers), len(groups) * len(starts)), mp_context=ctx)
        from ..engine.allocator import is_tuned

        # the workers are fresh processes: they repeat this process's tune_process, if it asked for one
        unit = dict(threads=torch.get_num_threads(), tuning=is_tuned(), **task)
        pending = {pool.submit(_run_group, group=g, splits=splits[a:a + chunk], **unit): (g, a)
                   for g in groups for a in starts}
        parts: dict[tuple, dict[int, pd.DataFrame]] = {g: {} for g in groups}
        errors = []

        def hand_over(block: bool):
            # a group whose chunks are all done goes to done() (so on_result saves it) as soon as this process
            # is free, its runs numbered as in one process; a group that failed does not lose the others' runs
            while pending:
                finished = [f for f in pending if f.done()]
                if not finished:
                    if not block:
                        return
                    wait(pending, return_when=FIRST_COMPLETED)
                    continue
                for f in finished:
                    g, a = pending.pop(f)
                    if f.exception() is not None:
                        errors.append(f.exception())
                        parts.pop(g, None)
                        for other in [o for o, (h, _) in pending.items() if h == g and o.cancel()]:
                            del pending[other]  # the group's chunks not started yet: no use training them
                    elif g in parts:
                        parts[g][a] = f.result().assign(run=lambda df, a=a: df["run"] + a)
                        if len(parts[g]) == len(starts):
                            chunks = parts.pop(g)
                            done(pd.concat([chunks[b] for b in starts], ignore_index=True))

        try:
            run_shallow(between=lambda: hand_over(block=False))  # meanwhile, here
            hand_over(block=True)
        except BaseException:  # e.g. a shallow method failed, or Ctrl-C: keep what is done, stop the rest now
            with contextlib.suppress(Exception):
                hand_over(block=False)
            for proc in list((getattr(pool, "_processes", None) or {}).values()):  # no public way to stop a running task
                proc.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if errors:
            raise errors[0]
    per_run = pd.concat(frames, ignore_index=True)
    order = {m: i for i, m in enumerate(methods)}
    return per_run.sort_values(["method", "run"], key=lambda c: c.map(order) if c.name == "method" else c, kind="stable").reset_index(drop=True)


def run_levels(
    dataset: str,
    X: np.ndarray,
    y: np.ndarray,
    levels: Sequence[float],
    n_runs: int,
    methods: Sequence[str] = CONTAMINATION_METHODS,
    *,
    profile: str = "full",
    max_parallel: int | None = None,
    on_result: Callable[[pd.DataFrame], None] | None = None,
    runs=None,
    **kwargs,
) -> pd.DataFrame:
    """Table 3's runs: every method at every contamination level, the levels' runs trained together.

    The runs of all levels go to :func:`run_methods` as one list, so a torch
    method trains them as one batched model (``max_parallel`` at a time)
    instead of one level after another. Runs trained together are
    independent (each keeps its initialisation, shuffling and dropout
    streams), so on the CPU each run's result is exactly what it gives alone
    (tested); on a GPU, batched arithmetic may round differently.

    Parameters
    ----------
    dataset : str
        The dataset's name (its paper setting and rho).
    X, y : ndarray
        The dataset's base arrays (:func:`dagmm.datasets.load_base`).
    levels : sequence of float
        Contamination levels c (:func:`contaminated_split`), at least one.
    n_runs : int
        Runs per method and level, seeds ``0..n-1`` (n capped by the profile,
        :func:`profile_runs`).
    methods : sequence of str, default :data:`CONTAMINATION_METHODS`
    profile : {"full", "smoke"}
    max_parallel : int, optional
        Runs trained together; ``None``: all runs of all levels at once.
    on_result : callable, optional
        Called with the per-run rows (``c`` and ``run`` as returned) of each
        training group or shallow method, every level at once, as soon as they
        are done, so that a crash in a later method loses nothing computed.
    runs : str or sequence of int, optional
        Only these runs of each level (:func:`select_runs`), e.g. ``"10-19"``
        to finish a study whose runs 0-9 ran earlier.
    **kwargs
        Passed to :func:`run_methods` (``device``, ``verbose``, ``overrides``, ``n_jobs``).

    Returns
    -------
    per_run : DataFrame, :func:`run_methods`'s columns with ``c`` after ``method``;
        ``run`` is the run's number within its level (its seed). A torch method's ``seconds`` is an even
        share of its one training over all levels' runs.
    """
    cs = [float(c) for c in levels]
    if not cs:
        raise ValueError("levels must name at least one contamination level")
    seeds = np.asarray(profile_seeds(profile, n_runs, runs))
    splits = [s for c in cs for s in profile_splits(dataset, y, n_runs, profile, c=c, runs=seeds)]

    def by_level(df):  # position i of the joint list is run seeds[i % k] of level i // k
        df = df.copy()
        k = len(seeds)
        df.insert(2, "c", np.asarray(cs)[df["run"].to_numpy() // k])
        df["run"] = seeds[df["run"].to_numpy() % k]
        return df.sort_values(["c"], kind="stable").reset_index(drop=True)

    done = None if on_result is None else (lambda df: on_result(by_level(df)))
    return by_level(run_methods(dataset, X, y, splits, methods, profile=profile, max_parallel=max_parallel,
                                on_result=done, **kwargs))


def resolve_n_jobs(n_jobs: int) -> int:
    """Threads for ``n_jobs`` (joblib's convention: -1 all, -2 all but one, ...).

    "All" is ``OMP_NUM_THREADS`` when it is set (the runner's ``--jobs`` splits
    the cores between notebooks through it), else the cores joblib sees.
    """
    if n_jobs >= 1:
        return int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs=0: expected a positive number of threads or a negative one (-1: all)")
    from joblib import cpu_count

    env = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(env) if env.isdigit() and int(env) > 0 else cpu_count()
    return max(1, cores + 1 + int(n_jobs))


def resolve_workers(workers: int, device: str = "auto", threads: int | None = None) -> int:
    """Worker processes for :func:`run_methods`'s ``workers``.

    A positive number is kept. 0 ("auto") means one worker per ``threads`` cores on a
    CPU (``threads``: each worker's torch threads, by default this process's; the cores
    :func:`resolve_n_jobs` counts, so the runner's ``--jobs`` split holds), and 1 on a
    GPU, where nothing has measured more yet.
    """
    if int(workers) >= 1:
        return int(workers)
    if int(workers) < 0:
        raise ValueError(f"workers={workers}: expected a positive number of worker processes, or 0 for one per core")
    import torch

    from ..engine.training import resolve_device

    if resolve_device(device).type != "cpu":
        return 1
    return max(1, resolve_n_jobs(-1) // max(1, int(threads or torch.get_num_threads())))


def _one_thread_each(fn):
    """``fn`` with OpenMP limited to one thread in the calling thread (OpenMP's limit is per thread)."""
    from threadpoolctl import threadpool_limits

    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="openmp"):
            return fn(*args, **kwargs)
    return wrapped


def _run_shallow(dataset, X, y, splits, method, profile, rho, overrides, n_jobs) -> pd.DataFrame:
    """:func:`dagmm.protocol.run_estimator` over the runs, ``n_jobs`` threads at a time."""
    n_jobs = resolve_n_jobs(n_jobs)

    def make(s):
        est = make_estimator(method, dataset, profile=profile, random_state=s, **overrides)
        if n_jobs != 1 and "detector__n_jobs" in est.get_params():
            est.set_params(detector__n_jobs=1)  # parallel over runs instead
        return est

    if n_jobs == 1 or len(splits) == 1:
        return run_estimator(dataset, X, y, splits, make, rho=rho, method=method)
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    # threads: libsvm, the neighbour search and the tree building release the GIL,
    # and the data are shared rather than copied to worker processes. BLAS and OpenMP
    # get one thread each while the runs are spread: n_jobs runs each calling a BLAS or
    # an OpenMP loop with every core oversubscribes the CPU, and OpenBLAS, called from
    # more threads than it was built for, can hang or kill the process (it did so in
    # LOF's neighbour search on KDDCUP with 16 cores). The BLAS limit is process-wide;
    # OpenMP's is per thread, so each worker sets its own.
    with threadpool_limits(limits=1, user_api="blas"):
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_one_thread_each(run_estimator))(dataset, X, y, [s], make, rho=rho, method=method) for s in splits)
    df = pd.concat(parts, ignore_index=True)
    df["run"] = np.arange(len(df))
    return df


CONTAMINATION_SEED_TAG = 104_729  # the draw of run s at level c uses default_rng([s, tag, round(c * 1e6)])


def training_half_anomalies(name: str, y_base: np.ndarray, split: RunSplit) -> np.ndarray:
    """The anomalies of a run's training half (the protocol trains without them)."""
    rows = draw_rows(name, y_base, split.seed)
    return np.setdiff1d(rows[y_base[rows] == 1], split.test_idx)


def contaminated_split(name: str, y_base: np.ndarray, split: RunSplit, c: float) -> RunSplit:
    """``split`` with a fraction ``c`` of its training rows replaced by anomalies.

    The rule (Table 3): the training set keeps its size n (the normal rows of
    the run's training half); ``round(c * n)`` of them, drawn at random
    without replacement, are replaced by as many anomalies drawn at random
    without replacement from the anomalies of the same training half (never
    from the test half, which is unchanged). The draw is seeded by the run's
    seed and c.
    """
    if not 0 <= c < 1:
        raise ValueError(f"contamination level c must be in [0, 1), got {c}")
    pool = training_half_anomalies(name, y_base, split)
    n = len(split.train_idx)
    k = int(round(c * n))
    if k > len(pool):
        raise ValueError(f"c={c} needs {k} anomalies but the training half has {len(pool)}")
    rng = np.random.default_rng([split.seed, CONTAMINATION_SEED_TAG, int(round(c * 1e6))])
    keep = rng.choice(split.train_idx, n - k, replace=False)
    add = rng.choice(pool, k, replace=False)
    return RunSplit(split.seed, np.sort(np.concatenate([keep, add])), split.test_idx)


def shrink_split(split: RunSplit, y_base: np.ndarray, max_train: int, max_test: int) -> RunSplit:
    """A random subset of a run's rows (for the smoke profile): at most ``max_train``
    training rows and ``max_test`` test rows, the test subset stratified by label."""
    rng = np.random.default_rng([split.seed, SMOKE_SEED_TAG])
    tr = split.train_idx
    if len(tr) > max_train:
        tr = np.sort(rng.choice(tr, max_train, replace=False))
    te = split.test_idx
    if len(te) > max_test:
        parts = []
        for label in (0, 1):
            r = te[y_base[te] == label]
            parts.append(rng.choice(r, max(1, int(round(len(r) * max_test / len(te)))), replace=False))
        te = np.sort(np.concatenate(parts))
    return RunSplit(split.seed, tr, te)


def profile_runs(profile: str, n_runs: int) -> int:
    """How many runs a profile makes of ``n_runs`` (the smoke profile caps it)."""
    p = _profile(profile)
    return n_runs if p["n_runs"] is None else min(n_runs, p["n_runs"])


def select_runs(spec, n_runs: int) -> list[int] | None:
    """The runs named by ``spec``, a subset of seeds ``0..n_runs-1``.

    Lets the runs of one (dataset, method) be split over several executions
    (e.g. ``"0-9"`` in one session, ``"10-19"`` in the next): a run's result
    does not depend on which others train beside it (see :func:`run_levels`).

    Parameters
    ----------
    spec : str, sequence of int or None
        ``""`` or None: every run. Otherwise comma-separated run numbers and
        inclusive ranges, e.g. ``"0-9"``, ``"3,7,12-14"`` (a bare number, as
        papermill may pass it, is one run).
    n_runs : int, the runs of the profile (:func:`profile_runs`)

    Returns
    -------
    list of int, sorted and distinct, or None for every run
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, (int, np.integer)):
        spec = str(spec)
    import re

    ranges = []
    try:
        if isinstance(spec, str):
            for part in (p.strip() for p in spec.split(",") if p.strip()):
                m = re.fullmatch(r"([0-9]+)\s*(?:-\s*([0-9]+))?", part)  # ASCII digits only
                if m is None:
                    raise ValueError(f"{part!r} is not a run number or a range a-b")
                a, b = int(m[1]), int(m[2] if m[2] is not None else m[1])
                if b < a:
                    raise ValueError(f"empty range {part!r}")
                ranges.append((a, b))
        else:
            for r in spec:
                if isinstance(r, bool) or not float(r).is_integer():
                    raise ValueError(f"{r!r} is not a whole run number")
                ranges.append((int(r), int(r)))
    except (TypeError, ValueError) as e:
        raise ValueError(f"runs={spec!r}: expected run numbers and ranges such as '0-9' or '3,7,12-14' ({e})") from None
    bad = [f"{a}-{b}" if a != b else str(a) for a, b in ranges if not 0 <= a <= b < n_runs]
    if bad or not ranges:
        raise ValueError(f"runs={spec!r}: runs must lie in 0..{n_runs - 1} (this profile makes {n_runs} runs)"
                         + (f"; out of range: {', '.join(bad)}" if bad else "; none named"))
    return sorted({r for a, b in ranges for r in range(a, b + 1)})


def profile_seeds(profile: str, n_runs: int, runs=None) -> list[int]:
    """The seeds a profile runs: ``0..n-1`` (n capped by the profile, :func:`profile_runs`),
    or the subset ``runs`` names (:func:`select_runs`)."""
    n = profile_runs(profile, n_runs)
    return select_runs(runs, n) or list(range(n))


def profile_splits(name: str, y_base: np.ndarray, n_runs: int, profile: str, c: float = 0.0,
                   runs=None) -> list[RunSplit]:
    """The runs of a profile: seeds ``0..n-1`` (n capped by the profile), the
    paper's splits, contaminated at level ``c`` (:func:`contaminated_split`) when
    ``c > 0``, and shrunk to the smoke profile's row caps.

    ``runs`` (see :func:`select_runs`) keeps only those seeds, in order."""
    p = _profile(profile)
    splits = make_splits(name, y_base, profile_seeds(profile, n_runs, runs))
    if c > 0:
        splits = [contaminated_split(name, y_base, s, c) for s in splits]
    if p.get("max_rows"):
        splits = [shrink_split(s, y_base, *p["max_rows"]) for s in splits]
    return splits


def contaminated_splits(name: str, y_base: np.ndarray, seeds: Sequence[int], c: float) -> list[RunSplit]:
    """:func:`contaminated_split` of every run's :func:`dagmm.protocol.make_split`."""
    return [contaminated_split(name, y_base, s, c) for s in make_splits(name, y_base, seeds)]


def settings_table(dataset: str, methods: Sequence[str] = ALL_METHODS, profile: str = "full") -> pd.DataFrame:
    """One row per method: its estimator and the parameters that differ from the estimator's defaults."""
    rows = []
    for m in methods:
        est = make_estimator(m, dataset, profile=profile)
        params = {k: v for k, v in est.get_params(deep=False).items() if k not in ("device", "random_state", "verbose")}
        if isinstance(est, SklearnDetector):
            params["detector"] = repr(est.detector)
        defaults = type(est)().get_params(deep=False)
        shown = {k: v for k, v in params.items() if k == "detector" or defaults.get(k) != v}
        rows.append(dict(method=m, estimator=type(est).__name__, settings=", ".join(f"{k}={v}" for k, v in shown.items())))
    return pd.DataFrame(rows)


def aggregate_levels(per_run: pd.DataFrame, published: pd.DataFrame | None = None, source: str = "zong2018_iclr") -> pd.DataFrame:
    """Table 3: mean and std over runs per (dataset, method, contamination level ``c``).

    With ``published``, adds ``paper_precision, paper_recall, paper_f1`` from its
    rows with ``table == "table3"`` and ``setting == f"c={c:g}"`` (empty where none).
    """
    from ..protocol import TABLE_COLUMNS, aggregate

    parts = []
    for c, d in per_run.groupby("c", sort=True):
        t = aggregate(d)
        t.insert(2, "c", c)
        parts.append(t)
    table = pd.concat(parts, ignore_index=True)
    cols = TABLE_COLUMNS[:2] + ["c"] + TABLE_COLUMNS[2:]
    table = table[cols]
    paper = ["paper_precision", "paper_recall", "paper_f1"]
    if published is not None:
        pub = published[(published["source"] == source) & (published["table"] == "table3")]
        pub = pub.assign(setting=pub["setting"].astype(str))[["dataset", "method", "setting", "precision", "recall", "f1"]]
        pub = pub.rename(columns={"precision": paper[0], "recall": paper[1], "f1": paper[2]})
        table = table.assign(setting=[f"c={c:g}" for c in table.c]).merge(pub, on=["dataset", "method", "setting"], how="left")
        table = table.drop(columns="setting")
    else:
        for p in paper:
            table[p] = np.nan
    return table[cols + paper]
