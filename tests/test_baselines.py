"""The paper's baselines and the modern detectors: each beats chance on a synthetic
problem, follows scikit-learn's conventions, and rejects bad input clearly."""
import numpy as np
import pytest
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM
from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init

from dagmm.baselines import DCN, DSEBM, ECOD, DAGMMVariant, DeepSVDD, SklearnDetector
from dagmm.baselines.ablations import VariantModule
from dagmm.baselines.suite import contaminated_split, make_estimator, profile_splits, run_levels, run_methods
from dagmm.mixture import GaussianMixture
from dagmm.protocol import make_split


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny networks: one thread avoids oversubscribing a shared CPU (10x faster here)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def two_clusters(n_normal, n_anomaly, seed):
    """Normal rows: two elongated clusters in 6-D; anomalies: uniform in a wider box."""
    rng = np.random.default_rng(seed)
    sign = np.where(rng.random((n_normal, 1)) < 0.5, -1.0, 1.0)
    Xn = sign * np.array([[1, -0.5, 0.5, 1, -1, 0.8]]) + rng.uniform(-0.3, 0.3, (n_normal, 1)) * np.array([[1, 1, -1, 0.5, 0.5, 1]])
    Xn += 0.05 * rng.normal(size=Xn.shape)
    Xa = rng.uniform(-2, 2, size=(n_anomaly, 6))
    return Xn.astype(np.float32), Xa.astype(np.float32)


@pytest.fixture(scope="module")
def problem():
    Xtr, _ = two_clusters(300, 0, 0)
    Xn, Xa = two_clusters(200, 50, 1)
    return Xtr, np.vstack([Xn, Xa]), np.r_[np.zeros(200), np.ones(50)]


CPU = dict(device="cpu", random_state=0)
DK = dict(hidden=(8, 4), latent_dim=1, n_components=2, batch_size=100, lr=1e-3, **CPU)
OWN = dict(batch_size=100, **CPU)


def estimators(ep):
    """Every method at a small size, ``ep`` epochs (per stage)."""
    return {
        "GMM-EN": DAGMMVariant(lambda_recon=0, epochs=ep, **DK),
        "E2E-AE": DAGMMVariant(scoring="recon", epochs=ep, **DK),
        "PAE": DAGMMVariant(scoring="recon", lambda_energy=0, lambda_cov=0, epochs=ep, **DK),
        "PAE-GMM-EM": DAGMMVariant(pretrain_epochs=ep, second_stage="em", epochs=ep, **DK),
        "PAE-GMM": DAGMMVariant(pretrain_epochs=ep, second_stage="frozen", epochs=ep, **DK),
        "DAGMM-p": DAGMMVariant(pretrain_epochs=ep, second_stage="finetune", epochs=ep, **DK),
        "DAGMM-NVI": DAGMMVariant(objective="nvi", epochs=ep, **DK),
        "DSEBM-e": DSEBM(epochs=ep, **OWN),
        "DSEBM-r": DSEBM(scoring="recon", epochs=ep, **OWN),
        "DCN": DCN(hidden=(8, 4), latent_dim=1, n_clusters=2, pretrain_epochs=ep, epochs=ep, **OWN),
        "Deep SVDD": DeepSVDD(epochs=ep, **OWN),
        "OC-SVM": SklearnDetector(OneClassSVM(nu=0.1, gamma="scale"), random_state=0),
        "Isolation Forest": SklearnDetector(IsolationForest(n_estimators=50), preprocessing=None, random_state=0),
        "LOF": SklearnDetector(LocalOutlierFactor(novelty=True), max_samples=200, random_state=0),
        "ECOD": ECOD(),
    }


METHODS = list(estimators(1))


@pytest.mark.parametrize("method", METHODS)
def test_beats_chance_on_two_clusters(method, problem):
    Xtr, Xte, yte = problem
    est = estimators(60)[method].fit(Xtr)
    energy = est.energy(Xte)
    assert roc_auc_score(yte, energy) > 0.7  # chance is 0.5; its null sd here is ~0.045
    np.testing.assert_allclose(est.score_samples(Xte), -energy)
    np.testing.assert_allclose(est.decision_function(Xte), est.threshold_ - energy)
    assert set(np.unique(est.predict(Xte))) <= {-1, 1}  # scikit-learn's OutlierMixin: -1 = anomaly
    assert (est.predict(Xte)[yte == 1] == -1).mean() > (est.predict(Xte)[yte == 0] == -1).mean()


@pytest.mark.parametrize("method", METHODS)
def test_sklearn_conventions_and_fit_twice(method, problem):
    Xtr, Xte, _ = problem
    est = estimators(2)[method]
    name = type(est).__name__
    check_no_attributes_set_in_init(name, est)
    check_get_params_invariance(name, est)
    c = clone(est)
    assert c is not est and c.get_params().keys() == est.get_params().keys()
    assert est.fit(Xtr) is est
    first = est.energy(Xte)
    second = clone(est).fit(Xtr).energy(Xte)
    np.testing.assert_array_equal(first, est.fit(Xtr).energy(Xte))  # a second fit forgets the first
    np.testing.assert_array_equal(first, second)
    assert est.n_features_in_ == Xtr.shape[1]


@pytest.mark.parametrize("method", METHODS)
def test_bad_input_raises_clear_value_errors(method, problem):
    Xtr, Xte, _ = problem
    est = estimators(1)[method]
    bad = Xtr.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(est).fit(bad)
    est.fit(Xtr)
    with pytest.raises(ValueError, match="features"):
        est.energy(Xte[:, :4])
    with pytest.raises(ValueError, match="contamination"):
        clone(est).set_params(contamination=0.9).fit(Xtr)


@pytest.mark.parametrize(
    "est, param",
    [
        (DAGMMVariant(scoring="energy2", **DK), "scoring"),
        (DAGMMVariant(second_stage="em2", pretrain_epochs=1, **DK), "second_stage"),
        (DAGMMVariant(pretrain_epochs=-1, **DK), "pretrain_epochs"),
        (DSEBM(noise_std=0.0, **OWN), "noise_std"),
        (DSEBM(hidden=(), **OWN), "hidden"),
        (DCN(n_clusters=0, **OWN), "n_clusters"),
        (DeepSVDD(lr=-1.0, **OWN), "lr"),
        (SklearnDetector(None), "detector"),
        (SklearnDetector(OneClassSVM(), max_samples=1), "max_samples"),
    ],
)
def test_bad_parameters_are_named(est, param, problem):
    with pytest.raises(ValueError, match=param):
        est.fit(problem[0])


def test_pae_is_the_pretraining_of_the_pretrained_variants(problem):
    Xtr, Xte, _ = problem
    pae = DAGMMVariant(scoring="recon", lambda_energy=0, lambda_cov=0, epochs=5, **DK).fit(Xtr)
    frozen = DAGMMVariant(pretrain_epochs=5, second_stage="frozen", epochs=3, **DK).fit(Xtr)
    em = DAGMMVariant(pretrain_epochs=5, second_stage="em", epochs=3, **DK).fit(Xtr)
    ref = pae.module_.compressor.state_dict()
    for m in (frozen, em):  # the compressor left by pre-training is PAE's, and PAE-GMM keeps it frozen
        for k, v in m.module_.compressor.state_dict().items():
            torch.testing.assert_close(v, ref[k], rtol=0, atol=0)
    np.testing.assert_allclose(frozen.set_params(scoring="recon").energy(Xte), pae.energy(Xte), rtol=1e-6)


def test_pae_gmm_em_fits_the_mixture_of_sklearn(problem):
    from sklearn.mixture import GaussianMixture as SkGMM

    Xtr, Xte, _ = problem
    est = DAGMMVariant(pretrain_epochs=5, second_stage="em", **DK).fit(Xtr)
    z_tr, z_te = est.transform(Xtr).astype(np.float64), est.transform(Xte).astype(np.float64)
    gm = SkGMM(2, covariance_type="full", reg_covar=est.cov_eps, random_state=0).fit(z_tr)
    np.testing.assert_allclose(est.energy(Xte), -gm.score_samples(z_te), rtol=2e-3, atol=2e-3)


def test_nvi_objective_bounds_the_energy_and_meets_it_at_the_posterior():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 50, 3, generator=g, dtype=torch.float64)
    gamma = torch.softmax(torch.randn(1, 50, 2, generator=g, dtype=torch.float64), -1)
    mix = GaussianMixture()
    params = mix.estimate(gamma, z)
    logp, _ = mix.log_prob_components(z, params)  # (1, K, N)
    energy = -torch.logsumexp(logp, 1)

    def neg_elbo(q):  # q (1, K, N)
        return -(q * (logp - torch.log(q))).sum(1)

    assert torch.all(neg_elbo(gamma.transpose(1, 2)) >= energy - 1e-9)
    posterior = torch.softmax(logp, 1)
    torch.testing.assert_close(neg_elbo(posterior), energy)


def test_variant_module_without_mixture_terms_is_the_reconstruction_loss(problem):
    est = DAGMMVariant(**DK)
    m = est._build_module(2, (6,))
    m.reset_parameters([torch.Generator().manual_seed(s) for s in (0, 1)])
    assert isinstance(m, VariantModule)
    x = torch.as_tensor(problem[0][:32])[None].expand(2, -1, -1)
    loss, _ = m.loss(x, lambda_energy=0.0, lambda_cov=0.0)
    out = m(x)
    torch.testing.assert_close(loss, (out.x - out.x_hat).pow(2).sum(-1).mean(-1))


@pytest.mark.parametrize("cls", [DSEBM, DeepSVDD, DCN])
def test_a_run_trained_beside_others_equals_the_run_alone(cls, problem):
    Xtr, Xte, _ = problem
    X = np.vstack([Xtr, Xte])
    est = cls(epochs=3, **{**OWN, **({"pretrain_epochs": 2, "hidden": (8, 4), "n_clusters": 2} if cls is DCN else {})})
    rng = np.random.default_rng(0)
    tr = np.stack([np.sort(rng.choice(len(Xtr), 250, replace=False)) for _ in range(2)])
    te = np.tile(np.arange(len(Xtr), len(X)), (2, 1))
    mod, _, Xt = est._fit_runs(X, tr, [5, 7])
    both = est._score_runs(mod, Xt, te)
    mod1, _, Xt1 = est._fit_runs(X, tr[1:], [7])
    np.testing.assert_allclose(both[1], est._score_runs(mod1, Xt1, te[1:])[0], rtol=1e-4, atol=1e-5)


def test_dsebm_recon_score_is_the_squared_energy_gradient(problem):
    est = DSEBM(epochs=2, **OWN).fit(problem[0])
    m = est.module_
    x = torch.as_tensor(problem[1][:20])[None]
    xs = m.scaled(x).requires_grad_(True)
    (g,) = torch.autograd.grad(m.energy_scaled(xs).sum(), xs)
    np.testing.assert_allclose(est.set_params(scoring="recon").energy(problem[1][:20]), g.pow(2).sum(-1)[0].numpy(), rtol=1e-5)


def test_ecod_follows_its_definition():
    rng = np.random.default_rng(0)
    Xtr = rng.normal(size=(200, 3)) * [1, 2, 1] + [0, 0, 5]
    Xtr[:, 2] = rng.exponential(size=200)  # right-skewed column
    Xte = np.array([[0.0, 0.0, 0.5], [4.0, 0.0, 0.5], [0.0, 0.0, 6.0], [0.0, -8.0, 0.5]])
    est = ECOD().fit(Xtr)
    n = len(Xtr)
    u_l = -np.log(((Xtr[None] <= Xte[:, None]).sum(1) + 1) / (n + 1))
    u_r = -np.log(((Xtr[None] >= Xte[:, None]).sum(1) + 1) / (n + 1))
    sk = np.array([np.mean((c - c.mean()) ** 3) / np.std(c) ** 3 for c in Xtr.T])
    u_s = np.where(sk < 0, u_l, u_r)
    np.testing.assert_allclose(est.energy(Xte), np.max([u_l.sum(1), u_r.sum(1), u_s.sum(1)], 0))
    assert np.argmin(est.energy(Xte)) == 0  # the central point is the least outlying


def test_sklearn_detector_scales_subsamples_and_negates(problem):
    Xtr, Xte, _ = problem
    est = SklearnDetector(OneClassSVM(nu=0.1, gamma="scale"), max_samples=100, random_state=3).fit(Xtr)
    lo, hi = Xtr.min(0).astype(np.float64), Xtr.max(0).astype(np.float64)
    rows = np.sort(np.random.default_rng(3).choice(len(Xtr), 100, replace=False))
    ref = OneClassSVM(nu=0.1, gamma="scale").fit(((Xtr - lo) / (hi - lo))[rows].astype(np.float64))
    np.testing.assert_allclose(est.energy(Xte), -ref.score_samples((Xte - lo) / (hi - lo)), rtol=1e-6)
    assert est.detector_.support_vectors_.shape[0] <= 100


def test_contamination_rule_keeps_size_and_draws_from_the_training_half():
    y = np.r_[np.zeros(1000, np.int64), np.ones(300, np.int64)]
    split = make_split("thyroid", y, 4)
    for c in (0.01, 0.05):
        s = contaminated_split("thyroid", y, split, c)
        added = np.setdiff1d(s.train_idx, split.train_idx)
        assert len(s.train_idx) == len(split.train_idx) and len(np.unique(s.train_idx)) == len(s.train_idx)
        assert len(added) == round(c * len(split.train_idx)) and np.all(y[added] == 1)
        assert not np.intersect1d(s.train_idx, split.test_idx).size
        np.testing.assert_array_equal(s.test_idx, split.test_idx)
        np.testing.assert_array_equal(s.train_idx, contaminated_split("thyroid", y, split, c).train_idx)
    with pytest.raises(ValueError, match="contamination level"):
        contaminated_split("thyroid", y, split, 1.5)


def test_suite_runs_shared_groups_on_real_data(real_data_dir):
    from dagmm.datasets import load_base
    from dagmm.protocol import make_splits

    X, y = load_base("thyroid", real_data_dir)
    splits = make_splits("thyroid", y, range(2))
    methods = ["PAE", "PAE-GMM", "DSEBM-r", "DSEBM-e", "ECOD"]
    df = run_methods("thyroid", X, y, splits, methods, profile="smoke", device="cpu", verbose=False)
    assert list(df.method.unique()) == methods and len(df) == 2 * len(methods)
    assert not df.failed.any() and df[["f1", "auroc"]].notna().all().all()
    # a shared run equals the method's own estimator
    est = make_estimator("PAE", "thyroid", profile="smoke", device="cpu", random_state=0).fit(X[splits[0].train_idx])
    assert roc_auc_score(y[splits[0].test_idx], est.energy(X[splits[0].test_idx])) == pytest.approx(df.auroc.iloc[0], abs=1e-9)


def test_select_runs_parses_subsets_and_rejects_bad_ones():
    from dagmm.baselines.suite import select_runs

    assert select_runs("", 20) is None and select_runs(None, 20) is None
    assert select_runs("0-9", 20) == list(range(10))
    assert select_runs("12-14, 3,7,3", 20) == [3, 7, 12, 13, 14]
    assert select_runs(5, 20) == [5]  # papermill passes "-p runs=5" as a number
    assert select_runs([4, 1], 20) == [1, 4]
    for bad, msg in (("15-25", r"0\.\.19.*out of range: 15-25"), ("9-3", "empty range"), ("a-b", "run numbers"),
                     (",", "none named"), ("-1", "run numbers"), ("0-9999999999", "out of range"), ([1.5], "whole"),
                     ("\u0663", "run numbers")):
        with pytest.raises(ValueError, match=msg):
            select_runs(bad, 20)


def test_runs_split_over_executions_equal_the_runs_made_together(real_data_dir):
    """The runs of a study can be split over executions (runs="1", then "0"): each run is numbered by its seed
    and scores exactly as when all runs train together, for the contamination levels too."""
    from dagmm.datasets import load_base

    X, y = load_base("thyroid", real_data_dir)
    methods = ["DAGMM", "OC-SVM"]
    full = run_levels("thyroid", X, y, (0.005, 0.02), 2, methods, profile="smoke", device="cpu", verbose=False)
    part = run_levels("thyroid", X, y, (0.005, 0.02), 2, methods, profile="smoke", device="cpu", verbose=False, runs="1")
    assert sorted(part.run.unique()) == [1] and len(part) == 2 * len(methods)
    key = ["method", "c", "run"]
    ref = full.set_index(key).loc[part.set_index(key).index]
    for col in ("seed", "f1", "auroc", "auprc"):
        np.testing.assert_allclose(part.set_index(key)[col].to_numpy(float), ref[col].to_numpy(float), rtol=0, atol=1e-6)
    assert (part.run == part.seed).all()
    splits = profile_splits("thyroid", y, 20, "full", runs="18-19")
    assert [s.seed for s in splits] == [18, 19]
    assert np.array_equal(splits[1].test_idx, profile_splits("thyroid", y, 20, "full")[19].test_idx)


def test_levels_trained_together_equal_levels_run_one_after_another(real_data_dir):
    """Table 3 trains the runs of every contamination level as one batched model;
    each run must score exactly as when its level is run alone."""
    from dagmm.datasets import load_base

    X, y = load_base("thyroid", real_data_dir)
    levels, methods = (0.005, 0.02), ["DAGMM", "DCN", "OC-SVM"]
    seen = []
    together = run_levels("thyroid", X, y, levels, 2, methods, profile="smoke", device="cpu", verbose=False,
                          on_result=seen.append)
    assert len(together) == len(levels) * 2 * len(methods)
    # what on_result saw, method by method as each finished, is the result, already split into levels
    assert [sorted(d.method.unique()) for d in seen] == [[m] for m in methods]
    key = ["method", "c", "run"]
    pd.testing.assert_frame_equal(pd.concat(seen).sort_values(key).reset_index(drop=True),
                                  together.sort_values(key).reset_index(drop=True))
    for c in levels:
        alone = run_methods("thyroid", X, y, profile_splits("thyroid", y, 2, "smoke", c=c), methods, profile="smoke",
                            device="cpu", verbose=False)
        got = together[together.c == c].set_index(["method", "run"]).sort_index()
        ref = alone.set_index(["method", "run"]).sort_index()
        assert got.index.equals(ref.index)
        for col in ("seed", "precision", "recall", "f1", "auroc", "auprc"):
            np.testing.assert_allclose(got[col].to_numpy(float), ref[col].to_numpy(float), rtol=0, atol=1e-6, err_msg=f"{c} {col}")
    # the contaminated levels really differ (the test would pass trivially otherwise)
    a, b = (together[(together.c == c) & (together.method == "DAGMM")].auroc.to_numpy() for c in levels)
    assert not np.array_equal(a, b)
    # chunks of 3 runs straddle the two levels: still each run's own result
    chunked = run_levels("thyroid", X, y, levels, 2, ["DAGMM"], profile="smoke", device="cpu", verbose=False, max_parallel=3)
    ref = together[together.method == "DAGMM"].reset_index(drop=True)
    np.testing.assert_allclose(chunked[["c", "run", "seed", "f1", "auroc"]].to_numpy(float),
                               ref[["c", "run", "seed", "f1", "auroc"]].to_numpy(float), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="levels"):
        run_levels("thyroid", X, y, [], 2, methods, profile="smoke", device="cpu", verbose=False)


@pytest.mark.parametrize("gamma", ["scale", "auto", 0.7])
def test_ocsvm_blas_scores_equal_libsvm(problem, gamma):
    # the chunked-BLAS scoring of an RBF one-class SVM against libsvm's own, across chunk boundaries
    from dagmm.baselines.classic import _rbf_svm_scores

    Xtr, Xte, _ = problem
    svm = OneClassSVM(nu=0.2, gamma=gamma).fit(Xtr.astype(np.float64))
    X = np.vstack([Xte, Xtr]).astype(np.float64)
    ours = _rbf_svm_scores(svm.support_vectors_, svm.dual_coef_[0], float(svm._gamma), X, chunk=97)
    np.testing.assert_allclose(ours, svm.score_samples(X), rtol=1e-9, atol=1e-12)


def test_shallow_runs_spread_over_threads_equal_one_after_another():
    # n_jobs threads (BLAS and OpenMP pinned to one thread meanwhile) give the runs' results unchanged
    from threadpoolctl import threadpool_info

    Xn, Xa = two_clusters(600, 150, 5)
    X, y = np.vstack([Xn, Xa]), np.r_[np.zeros(600, np.int64), np.ones(150, np.int64)]
    splits = [make_split("thyroid", y, s) for s in range(3)]
    from dagmm.baselines import suite

    before = [p["num_threads"] for p in threadpool_info()]
    inside = []
    original = suite.run_estimator

    def spy(*args, **kwargs):  # what BLAS and OpenMP allow in the worker thread running a run
        inside.append({p["user_api"]: p["num_threads"] for p in threadpool_info()})
        return original(*args, **kwargs)

    kw = dict(profile="full", device="cpu", verbose=False)
    one = run_methods("thyroid", X, y, splits, ["OC-SVM", "LOF", "Isolation Forest"], n_jobs=1, **kw)
    suite.run_estimator = spy
    try:
        three = run_methods("thyroid", X, y, splits, ["OC-SVM", "LOF", "Isolation Forest"], n_jobs=3, **kw)
    finally:
        suite.run_estimator = original
    assert len(inside) == 9 and all(set(d.values()) == {1} for d in inside), inside
    cols = ["method", "run", "seed", "precision", "recall", "f1", "auroc", "auprc"]
    pd.testing.assert_frame_equal(one[cols].reset_index(drop=True), three[cols].reset_index(drop=True))
    assert one.auroc.min() > 0.7
    assert [p["num_threads"] for p in threadpool_info()] == before  # the limits are lifted afterwards


def test_n_jobs_minus_one_means_the_threads_this_process_may_use(monkeypatch):
    from joblib import cpu_count

    from dagmm.baselines.suite import resolve_n_jobs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert resolve_n_jobs(3) == 3 and resolve_n_jobs(-1) == cpu_count()
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # set by the runner's --jobs
    assert resolve_n_jobs(-1) == 4 and resolve_n_jobs(-2) == 3 and resolve_n_jobs(-9) == 1
    with pytest.raises(ValueError, match="n_jobs=0"):
        resolve_n_jobs(0)


def test_workers_zero_means_one_per_core_on_a_cpu_and_one_on_a_gpu(monkeypatch):
    from dagmm.baselines.suite import resolve_workers

    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the cores this process may use (the runner's --jobs share)
    assert resolve_workers(3, "cpu") == 3  # a number is kept
    assert resolve_workers(0, "cpu", threads=1) == 4 and resolve_workers(0, "cpu", threads=2) == 2
    assert resolve_workers(0, "cpu", threads=8) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # "auto" is then the GPU
    assert resolve_workers(0, "auto", threads=1) == 1
    with pytest.raises(ValueError, match="workers=-1"):
        resolve_workers(-1, "cpu")


def test_dcn_code_diagnosis_reads_the_same_networks_three_ways():
    from dagmm.baselines.dcn import code_diagnosis

    Xn, Xa = two_clusters(600, 150, 7)
    X, y = np.vstack([Xn, Xa]), np.r_[np.zeros(600, np.int64), np.ones(150, np.int64)]
    splits = [make_split("thyroid", y, s) for s in range(2)]
    est = DCN(hidden=(8, 4), latent_dim=2, n_clusters=2, pretrain_epochs=30, epochs=30, batch_size=100, **CPU)
    d = code_diagnosis(est, X, y, splits)
    assert list(d.seed) == [0, 1] and d[["auroc_dcn", "auroc_recon", "auroc_kmeans", "anomalies_inside"]].apply(
        lambda c: c.between(0, 1).all()).all()
    # DCN's score alone, fitted the same way, ranks the test rows as the diagnosis says
    for j, s in enumerate(splits):
        alone = clone(est).set_params(random_state=s.seed).fit(X[s.train_idx])
        assert abs(roc_auc_score(y[s.test_idx], alone.energy(X[s.test_idx])) - d.auroc_dcn[j]) < 1e-6
    # the uniform anomalies reconstruct badly, and a k-means refitted to the final codes separates them; DCN's
    # own centroids (running means of every code ever assigned) lag behind codes that keep moving in training
    assert d.auroc_recon.min() > 0.8 and d.auroc_kmeans.min() > 0.9


def test_run_methods_hands_over_each_methods_runs_as_they_finish():
    Xn, Xa = two_clusters(300, 80, 9)
    X, y = np.vstack([Xn, Xa]), np.r_[np.zeros(300, np.int64), np.ones(80, np.int64)]
    splits = [make_split("thyroid", y, s) for s in range(2)]
    seen = []
    df = run_methods("thyroid", X, y, splits, ["ECOD", "DSEBM-r", "DSEBM-e", "LOF"], profile="smoke", device="cpu",
                     verbose=False, on_result=lambda d: seen.append(d.copy()))
    # one call per training group (DSEBM-r/-e share one) and per shallow method, with exactly its rows
    assert [sorted(set(d.method)) for d in seen] == [["DSEBM-e", "DSEBM-r"], ["LOF"], ["ECOD"]]
    got = pd.concat(seen).sort_values(["method", "run"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, df.sort_values(["method", "run"]).reset_index(drop=True))


def test_training_groups_in_worker_processes_give_each_run_its_own_result():
    """workers > 1 trains the groups side by side in worker processes: every run's
    numbers are those of workers=1, and on_result still sees every group here."""
    Xn, Xa = two_clusters(300, 80, 9)
    X, y = np.vstack([Xn, Xa]), np.r_[np.zeros(300, np.int64), np.ones(80, np.int64)]
    splits = [make_split("thyroid", y, s) for s in range(2)]
    methods = ["DAGMM", "E2E-AE", "DSEBM-e", "DCN", "ECOD"]
    kw = dict(profile="smoke", device="cpu", verbose=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers take this process's thread count; exact equality needs the same count
    try:
        one = run_methods("thyroid", X, y, splits, methods, **kw)
        seen = []
        three = run_methods("thyroid", X, y, splits, methods, workers=3, on_result=seen.append, **kw)
    finally:
        torch.set_num_threads(threads)
    cols = ["method", "run", "seed", "precision", "recall", "f1", "auroc", "auprc", "failed"]
    pd.testing.assert_frame_equal(three[cols], one[cols])
    assert sorted(sorted(set(d.method)) for d in seen) == [["DAGMM", "E2E-AE"], ["DCN"], ["DSEBM-e"], ["ECOD"]]
    # one run at a time: each group's two chunks go to the workers separately, and come back as one group
    # (PAE-GMM-EM too, whose EM runs on the BLAS that the workers limit to their torch threads)
    more = ["DAGMM", "E2E-AE", "PAE-GMM-EM", "DCN", "ECOD"]
    torch.set_num_threads(1)
    try:
        seen = []
        chunked = run_methods("thyroid", X, y, splits, more, workers=2, max_parallel=1, on_result=seen.append, **kw)
        alone = run_methods("thyroid", X, y, splits, more, max_parallel=1, **kw)
        # a group whose first chunk fails: raised here, its other chunks dropped, the other groups handed over
        failing = []
        with pytest.raises(ValueError, match="epochs"):
            run_methods("thyroid", X, y, splits, more, workers=2, max_parallel=1, on_result=failing.append,
                        overrides={"DCN": {"epochs": -1}}, **kw)
    finally:
        torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(chunked[cols], alone[cols])
    assert sorted(sorted(set(d.method)) for d in seen) == [["DAGMM", "E2E-AE"], ["DCN"], ["ECOD"], ["PAE-GMM-EM"]]
    assert all(sorted(d.run) == sorted(list(range(len(splits))) * d.method.nunique()) for d in seen)
    assert sorted(sorted(set(d.method)) for d in failing) == [["DAGMM", "E2E-AE"], ["ECOD"], ["PAE-GMM-EM"]]
    assert one.auroc.min() > 0.5  # the two-cluster problem is learnt: the comparison is not between failures
    with pytest.raises(ValueError, match="workers"):
        run_methods("thyroid", X, y, splits, methods, workers=0, **kw)
    # a group that fails in its worker is raised here, after the other groups' runs were handed over
    seen = []
    with pytest.raises(ValueError, match="epochs"):
        run_methods("thyroid", X, y, splits, methods, workers=3, on_result=seen.append, overrides={"DCN": {"epochs": -1}}, **kw)
    assert sorted(sorted(set(d.method)) for d in seen) == [["DAGMM", "E2E-AE"], ["DSEBM-e"], ["ECOD"]]
    # a shallow method that fails here stops the workers and is raised, whatever they were doing
    with pytest.raises(ValueError, match="bogus"):
        run_methods("thyroid", X, y, splits, methods, workers=3, overrides={"ECOD": {"bogus": 1}}, **kw)


def test_a_new_method_is_one_registry_line(monkeypatch):
    from sklearn.covariance import EllipticEnvelope

    from dagmm.baselines import suite

    # a scikit-learn detector runs one run after another; a batched torch estimator trains its runs together
    monkeypatch.setitem(suite.REGISTRY, "Elliptic envelope", lambda c: c.shallow(EllipticEnvelope(random_state=0)))
    monkeypatch.setitem(suite.REGISTRY, "Deep SVDD (wide)", lambda c: DeepSVDD(**{**c.own, "hidden": (32, 8)}))
    groups, shallow = suite.training_plan()
    assert ("Deep SVDD (wide)",) in groups and "Elliptic envelope" in shallow
    Xn, Xa = two_clusters(300, 80, 9)
    X, y = np.vstack([Xn, Xa]), np.r_[np.zeros(300, np.int64), np.ones(80, np.int64)]
    splits = [make_split("thyroid", y, s) for s in range(2)]
    methods = ["Elliptic envelope", "Deep SVDD (wide)", "ECOD"]
    df = run_methods("thyroid", X, y, splits, methods, profile="smoke", device="cpu", verbose=False)
    assert list(df.method.unique()) == methods and len(df) == 6 and not df.failed.any()
    assert df[df.method == "Elliptic envelope"].auroc.min() > 0.9  # two well-separated clusters
    wide = make_estimator("Deep SVDD (wide)", "thyroid", profile="smoke", device="cpu")
    assert wide.hidden == (32, 8) and wide.epochs == suite.PROFILES["smoke"]["own_epochs"]["thyroid"]
    with pytest.raises(ValueError, match="unknown method"):
        make_estimator("Deep SVDD (narrow)", "thyroid")
