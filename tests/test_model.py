"""The DAGMM module and its training loop: gradients, learning, reproducibility."""
import shutil
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from dagmm import DAGMM
from dagmm.estimator import build_module, fit_runs
from dagmm.engine.layers import pair_sums, rational_tanh, reconstruction_features
from dagmm.engine.training import (compute_energy, compute_scores, dropout_masks, epoch_permutations, eval_chunk_rows,
                            make_generators, take_rows)


def manifold_data(n_normal=800, n_anom=200, d=8, seed=0):
    """Normal rows on a 1-D curve in R^d, anomalies uniform in the same box."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, n_normal)
    freqs = np.arange(1, d + 1) * 0.7
    normal = np.sin(np.outer(t, freqs) + np.arange(d)) + 0.01 * rng.normal(size=(n_normal, d))
    lo, hi = normal.min(0), normal.max(0)
    anom = rng.uniform(lo, hi, size=(n_anom, d))
    return normal.astype(np.float32), anom.astype(np.float32)


SMALL = dict(hidden=(16, 8), latent_dim=1, n_components=2, batch_size=128, lr=1e-3, device="cpu")


def test_reconstruction_features_match_numpy_and_survive_zero_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 5, 7))
    xh = rng.normal(size=(1, 5, 7))
    x[0, 0] = 0.0  # zero row
    xh[0, 1] = 0.0  # zero reconstruction
    f = reconstruction_features(torch.tensor(x), torch.tensor(xh)).numpy()
    assert np.isfinite(f).all()
    for i in range(2, 5):
        rel = np.linalg.norm(x[0, i] - xh[0, i]) / np.linalg.norm(x[0, i])
        cos = x[0, i] @ xh[0, i] / (np.linalg.norm(x[0, i]) * np.linalg.norm(xh[0, i]))
        np.testing.assert_allclose(f[0, i], [rel, cos], rtol=1e-10)


def test_one_pass_sums_give_autograds_features_loss_term_and_gradients():
    """pair_sums' hand-written backward against autograd through the plain norms (float64),
    with a zero input row, a zero reconstruction and an exact reconstruction (zero-norm gradients are 0)."""
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(2, 6, 9))
    xh0 = rng.normal(size=(2, 6, 9))
    x0[0, 0] = 0.0
    xh0[0, 1] = 0.0
    xh0[1, 2] = x0[1, 2]
    w = torch.tensor(rng.normal(size=(2, 6, 3)))  # weights of the features and the squared error in a scalar

    def objective(x, xh, fast):
        if fast:
            f = reconstruction_features(x, xh)
            sq = pair_sums(x, xh)[2]
        else:
            nx, nxh = x.norm(dim=-1).clamp_min(1e-10), xh.norm(dim=-1).clamp_min(1e-10)
            f = torch.stack([(x - xh).norm(dim=-1) / nx, (x * xh).sum(-1) / (nx * nxh)], -1)
            sq = (x - xh).pow(2).sum(-1)
        return (torch.cat([f, sq[..., None]], -1) * w).sum()

    grads = []
    for fast in (True, False):
        x = torch.tensor(x0, requires_grad=True)
        xh = torch.tensor(xh0, requires_grad=True)
        value = objective(x, xh, fast)
        value.backward()
        grads.append((value.detach(), x.grad, xh.grad))
    for a, b in zip(*grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    x = torch.tensor(x0[:, 2:], requires_grad=True)  # away from the zero norms: a finite-difference check too
    xh = torch.tensor(xh0[:, 2:] + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pair_sums(a, b), (x, xh))


def test_rational_tanh_is_tanh_to_float32_rounding_with_tanhs_gradient():
    """Values against float64 tanh over the whole float32 range that matters; the gradient is
    tanh's own, 1 - y^2 at the output, flowing through; odd, saturating, NaN-preserving."""
    x = torch.cat([torch.linspace(-12, 12, 400_001), torch.logspace(-30, 1, 20_001), -torch.logspace(-30, 1, 20_001),
                   torch.tensor([0.0, -0.0, 9.0, 9.01, 1e30, float("inf"), -float("inf")])])
    y = rational_tanh(x)
    ref = torch.tanh(x.double())
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert (y.double() - ref).abs().max() < 3.5e-7  # scripts/fit_tanh.py: 3.2e-7 at worst
    ulps = (y.double() - ref).abs() / torch.from_numpy(np.spacing(ref.float().numpy())).double()
    assert ulps.max() < 6 and ulps[x.abs() < 1e-3].max() < 2.5  # relative accuracy near 0 too, where tanh(x) ~ x
    assert torch.equal(rational_tanh(-x), -y) and y.abs().max() == 1.0
    assert torch.isnan(rational_tanh(torch.tensor([float("nan")]))).all()
    a = torch.randn(3, 50, 7, dtype=torch.float32).mul_(3).requires_grad_()
    g = torch.randn_like(a)
    out = rational_tanh(a)
    out.backward(g)
    assert torch.equal(a.grad, g * (1 - out.detach() ** 2))
    np.testing.assert_allclose(a.grad.numpy(), (g * (1 - torch.tanh(a.detach()) ** 2)).numpy(), atol=1e-6)
    assert not rational_tanh(a.detach()).requires_grad


def test_every_parameter_gets_a_nonzero_gradient_after_one_step():
    normal, _ = manifold_data()
    est = DAGMM(**SMALL)
    m = build_module(est, 1, normal.shape[1])
    m.reset_parameters(make_generators([0]))
    x = torch.tensor(normal[None, :128])
    mask = torch.ones(1, 128, est.estimation_hidden) * 2.0
    loss, _ = m.loss(x, mask, lambda_energy=est.lambda_energy, lambda_cov=est.lambda_cov)
    loss.sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
    assert any(n.startswith("compressor.") for n, _ in m.named_parameters())
    assert any(n.startswith("estimation.") for n, _ in m.named_parameters())


def test_loss_falls_on_a_small_problem():
    normal, _ = manifold_data()
    model = DAGMM(**SMALL, epochs=60, random_state=0).fit(normal)
    h = model.loss_history_
    assert np.isfinite(h).all()
    assert h[-5:].mean() < 0.5 * h[:5].mean()


def test_trained_model_clearly_beats_untrained_one():
    normal, anom = manifold_data()
    tr, te_norm = normal[:600], normal[600:]
    X_te = np.vstack([te_norm, anom])
    y_te = np.r_[np.zeros(len(te_norm)), np.ones(len(anom))]
    aucs = {}
    for epochs in (0, 300):
        m = DAGMM(**SMALL, epochs=epochs, random_state=0).fit(tr)
        aucs[epochs] = roc_auc_score(y_te, m.energy(X_te))
    assert aucs[300] > 0.9, aucs
    assert aucs[300] > aucs[0] + 0.15, aucs


def test_same_seed_gives_identical_energies_on_cpu():
    normal, anom = manifold_data()
    e = [DAGMM(**SMALL, epochs=3, random_state=7).fit(normal).energy(anom) for _ in range(2)]
    np.testing.assert_array_equal(e[0], e[1])
    e2 = DAGMM(**SMALL, epochs=3, random_state=8).fit(normal).energy(anom)
    assert not np.allclose(e[0], e2)


def test_runs_trained_together_equal_runs_trained_alone():
    normal, anom = manifold_data()
    X = np.vstack([normal, anom])
    rng = np.random.default_rng(0)
    idx = np.stack([np.sort(rng.choice(len(normal), 500, replace=False)) for _ in range(3)])
    # One epoch: the runs follow the same arithmetic. Floating-point rounding
    # differs in the last bit (vectorised kernels see tensors of other sizes),
    # and Adam amplifies such bits over many steps, so we compare early.
    est = DAGMM(**SMALL, epochs=1)
    seeds = [11, 12, 13]
    together, _, Xt = fit_runs(est, X, idx, seeds)
    e_together = compute_energy(together, Xt, np.tile(np.arange(len(X)), (3, 1)))
    for r, s in enumerate(seeds):
        alone, _, Xa = fit_runs(est, X, idx[r : r + 1], [s])
        e_alone = compute_energy(alone, Xa, np.arange(len(X))[None])[0]
        for p, q in zip(together.parameters(), alone.parameters()):
            np.testing.assert_allclose(p[r : r + 1].detach().numpy(), q.detach().numpy(), atol=1e-6)
        # Energies are ill-conditioned (the cosine feature's variance is tiny),
        # so last-bit differences in weights move them by up to a few percent;
        # the ranking, which is all the detector uses, is unchanged.
        np.testing.assert_allclose(e_together[r], e_alone, rtol=5e-2, atol=5e-2)
        assert spearmanr(e_together[r], e_alone).statistic > 0.999
        # and the estimator with random_state = seed is the same run
        e_est = DAGMM(**SMALL, epochs=1, random_state=s).fit(X[idx[r]]).energy(X)
        np.testing.assert_allclose(e_est, e_alone, rtol=1e-6, atol=1e-6)


def test_take_rows_is_advanced_indexing():
    g = torch.Generator().manual_seed(0)
    for shape in ((50, 7), (50, 3, 4, 5)):  # tabular rows and images
        X = torch.randn(*shape, generator=g)
        rows = torch.randint(0, 50, (3, 11), generator=g)
        assert torch.equal(take_rows(X, rows), X[rows])
        assert torch.equal(take_rows(X, rows[:, 2:9]), X[rows[:, 2:9]])  # a non-contiguous slice, as in training


@pytest.mark.parametrize("n", [257, 2000])  # masks of small epochs drawn in one call per run; large, on threads
def test_shuffles_and_dropout_masks_are_per_run_and_do_not_depend_on_epoch_grouping(n):
    seeds, h, p = [3, 4, 5], 10, 0.5

    def draw(fn, seeds, groups):
        gens = make_generators(seeds)
        return torch.cat([fn(gens, e) for e in groups])

    perm = lambda gens, e: epoch_permutations(gens, e, n, "cpu")  # noqa: E731
    mask = lambda gens, e: dropout_masks(gens, e, n, h, p, "cpu")  # noqa: E731
    for fn in (perm, mask):
        together = draw(fn, seeds, [6])  # (6, R, ...)
        assert torch.equal(together, draw(fn, seeds, [1, 2, 3]))  # epochs drawn in other groups
        for r, s in enumerate(seeds):  # a run alone draws what it draws beside others
            assert torch.equal(together[:, r], draw(fn, [s], [6])[:, 0])
        assert not torch.equal(together[:, 0], together[:, 1])
    perms = draw(perm, seeds, [6])
    assert perms.dtype == torch.long
    assert torch.equal(perms.sort(-1).values, torch.arange(n).expand_as(perms))  # permutations
    assert not torch.equal(perms[0], perms[1])  # a fresh one each epoch
    masks = draw(mask, seeds, [6])
    assert masks.shape == (6, 3, n, h) and masks.is_contiguous()
    for r, g in enumerate(make_generators(seeds)):  # one uniform draw per run, compared with 1 - p
        assert torch.equal(masks[:, r], (torch.rand(6, n, h, generator=g) < 1 - p).float() / (1 - p))
    assert set(masks.unique().tolist()) == {0.0, 1 / (1 - p)}
    kept = (masks > 0).double().mean().item()  # at least 46260 Bernoulli(1/2) draws: sd 0.0023
    assert abs(kept - (1 - p)) < 0.012
    assert abs((dropout_masks(make_generators([0]), 4, 1000, h, 0.2, "cpu") > 0).double().mean().item() - 0.8) < 0.01


def test_evaluation_chunks_change_neither_scores_nor_shape_and_reject_bad_sizes():
    normal, anom = manifold_data()
    X = np.vstack([normal, anom])
    m = DAGMM(**SMALL, epochs=2, random_state=0).fit(normal)
    Xt = torch.tensor(X)
    idx = np.arange(len(X))[None]
    auto = compute_scores(m.module_, Xt, idx)
    for chunk in (1, 7, 64, 10_000):
        # the same rows, only other matrix sizes: float rounding, which the ill-conditioned energy amplifies
        np.testing.assert_allclose(compute_scores(m.module_, Xt, idx, chunk=chunk), auto, rtol=1e-3, atol=1e-3)
    # the automatic size depends on the row width and the device only, not on the number of runs
    assert eval_chunk_rows(None, torch.zeros(10, 118)) == eval_chunk_rows(None, torch.zeros(10, 118))
    assert 64 <= eval_chunk_rows(None, torch.zeros(10, 3, 64, 64)) < eval_chunk_rows(None, torch.zeros(10, 118)) <= 16384
    for bad in (0, -3, 2.5, True, "100"):
        with pytest.raises(ValueError, match="chunk must be a positive integer"):
            compute_scores(m.module_, Xt, idx, chunk=bad)


def test_mixture_for_scoring_is_estimated_over_the_whole_training_set():
    normal, _ = manifold_data()
    m = DAGMM(**SMALL, epochs=2, random_state=0).fit(normal)
    z = torch.tensor(m.transform(normal), dtype=torch.float64)[None]
    with torch.no_grad():
        out = m.module_(torch.tensor(normal)[None])
    p = m.module_.mixture.estimate(out.gamma.double(), z)
    np.testing.assert_allclose(m.module_.phi.numpy(), p.phi.numpy(), rtol=1e-5)
    np.testing.assert_allclose(m.module_.mu.numpy(), p.mu.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_training_follows_eager_training():
    normal, anom = manifold_data()
    X = np.vstack([normal, anom])
    idx = np.arange(700)[None].repeat(2, 0)  # 700 rows, batch 128: 5 full batches and a partial one
    # 8 epochs: both batch shapes get past their warm-up steps and are replayed from their own graphs
    est = DAGMM(**{**SMALL, "device": "cuda"}, epochs=8)
    g, hg, Xg = fit_runs(est, X, idx, [0, 1], cuda_graph=True)
    e, he, Xe = fit_runs(est, X, idx, [0, 1], cuda_graph=False)
    np.testing.assert_allclose(hg["loss"], he["loss"], rtol=1e-4)
    for p, q in zip(g.parameters(), e.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().cpu().numpy(), atol=1e-5)


def test_feature_major_layers_compute_the_same_loss_and_gradients(monkeypatch):
    from dagmm.engine import module as model_mod
    from dagmm.engine import layers as nn_mod

    normal, _ = manifold_data()
    est = DAGMM(**SMALL)
    x = torch.tensor(normal[None, :600]).repeat(2, 1, 1)  # (R=2, B=600, 8)
    mask = dropout_masks(make_generators([0, 1]), 1, 600, est.estimation_hidden, 0.5, "cpu")[0]
    results = []
    for forced in (False, True):
        m = build_module(est, 2, 8)
        m.reset_parameters(make_generators([5, 6]))
        m.shift.fill_(0.1)
        m.scale.fill_(1.5)
        for mod in (model_mod, nn_mod):
            monkeypatch.setattr(mod, "prefer_feature_major", lambda t, forced=forced: forced and t.dim() == 3)
        out = m(x, mask)
        if forced:  # really computed feature-major: the codes and reconstruction are (R, F, B) arrays
            assert out.x_hat.transpose(1, 2).is_contiguous() and not out.x_hat.is_contiguous()
        loss, _ = m.loss(x, mask, lambda_energy=0.1, lambda_cov=0.005)
        loss.sum().backward()
        results.append((out, loss.detach(), [p.grad.clone() for p in m.parameters()]))
    (o1, l1, g1), (o2, l2, g2) = results
    for a, b in zip(o1[:4], o2[:4]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


needs_compiler = pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                                    reason="torch.compile's CPU backend needs a C++ compiler")


@needs_compiler
def test_compiled_training_follows_eager_training(monkeypatch):
    import torch._dynamo.utils

    from dagmm.engine import training

    monkeypatch.setattr(training, "_COMPILE_FAILED", False)
    normal, anom = manifold_data()
    X = np.vstack([normal, anom])
    # batch 512: a full batch and a short one, both feature-major (nn.prefer_feature_major)
    idx = np.arange(1000)[None].repeat(2, 0)
    est = DAGMM(**{**SMALL, "batch_size": 512}, epochs=4)
    torch._dynamo.utils.counters.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="torch.compile failed")  # a fallback would compare eager with eager
        c, hc, _ = fit_runs(est.set_params(torch_compile=True), X, idx, [0, 1])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    e, he, _ = fit_runs(est.set_params(torch_compile=False), X, idx, [0, 1])
    # fused kernels round differently in the last bits, nothing more
    np.testing.assert_allclose(hc["loss"], he["loss"], rtol=1e-4)
    for p, q in zip(c.parameters(), e.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-5)


def test_a_compiled_fit_keeps_the_layout_of_its_first_batch_for_the_short_last_one(monkeypatch):
    """The feature-major choice is made once per fit, from the first (full) batch: a per-batch choice
    would compile a second version of the step for every epoch's short last batch."""
    from dagmm.engine import layers as dnn
    from dagmm.engine import training

    seen = []

    def compile_(fn, **kw):
        def spy(*args, **kwargs):
            seen.append((args[0].shape[1], dnn._feature_major))
            return fn(*args, **kwargs)
        return spy

    monkeypatch.setattr(training, "_COMPILE_FAILED", False)
    monkeypatch.setattr(torch, "compile", compile_)
    X = torch.randn(1000, 4)
    for first in (dnn.FEATURE_MAJOR_MIN_BATCH, dnn.FEATURE_MAJOR_MIN_BATCH - 1):
        m = build_module(DAGMM(**SMALL), 2, 4)
        m.reset_parameters(make_generators([0, 1]))
        step = training.Stepper(m, 1e-3, 0.1, 0.005, compile=True)
        for b in (first, 300, first):
            step(X[:b].expand(2, b, 4).contiguous(), torch.ones(2, b, 10))
        assert seen == [(first, first >= dnn.FEATURE_MAJOR_MIN_BATCH), (300, first >= dnn.FEATURE_MAJOR_MIN_BATCH),
                        (first, first >= dnn.FEATURE_MAJOR_MIN_BATCH)]
        assert dnn._feature_major is False  # only inside the step
        seen.clear()


@needs_compiler
def test_compiled_cpu_networks_use_the_rational_tanh():
    """The networks' tanh is torch.tanh eagerly and the rational one inside torch.compile on the CPU."""
    from dagmm.engine import layers as dnn

    x = torch.randn(4, 300, 10) * 3
    assert torch.equal(dnn.tanh(x), torch.tanh(x))
    compiled = torch.compile(dnn.tanh, dynamic=True)(x)
    assert (compiled - rational_tanh(x)).abs().max() <= 1.2e-7  # the same operations, fused
    assert not torch.equal(compiled, torch.tanh(x))


def test_one_flat_parameter_for_adam_trains_exactly_as_separate_ones(monkeypatch):
    """The stepper's flat parameter (module parameters and gradients are views of two flat
    tensors) changes no value: Adam is elementwise. And backward still fills those views."""
    from dagmm.engine import training

    normal, _ = manifold_data()
    X = torch.tensor(normal)
    est = DAGMM(**SMALL)
    states = []
    for flat in (True, False):
        if not flat:
            monkeypatch.setattr(training, "_flatten_parameters", lambda params: None)
        m = build_module(est, 2, X.shape[1])
        m.reset_parameters(make_generators([0, 1]))
        step = training.Stepper(m, est.lr, est.lambda_energy, est.lambda_cov)
        assert (step._flat_grad is not None) == flat
        g = torch.Generator().manual_seed(0)
        for _ in range(5):
            rows = torch.randint(0, len(X), (2, 64), generator=g)
            mask = (torch.rand(2, 64, est.estimation_hidden, generator=g) < 0.5).float() * 2
            step(X[rows], mask)
        if flat:
            flat_ptrs = {p.data_ptr() for p in step.opt.param_groups[0]["params"]}
            assert len(flat_ptrs) == 1 and all(p.grad.abs().sum() > 0 for p in m.parameters())
        states.append({k: v.detach().clone() for k, v in m.named_parameters()})
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_failed_compile_trains_eagerly_with_a_warning(monkeypatch):
    from dagmm.engine import training

    def broken(*args, **kwargs):
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setattr(training, "_COMPILE_FAILED", False)  # restored afterwards
    monkeypatch.setattr(training, "_CPP_WRAPPER_FAILED", False)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    normal, _ = manifold_data()
    idx = np.arange(300)[None]
    est = DAGMM(**SMALL, epochs=2)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*C\\+\\+ compiler.*training eagerly"):
        c, hc, _ = fit_runs(est.set_params(torch_compile=True), normal, idx, [0])
    e, he, _ = fit_runs(est.set_params(torch_compile=False), normal, idx, [0])
    np.testing.assert_array_equal(hc["loss"], he["loss"])
    # the failure is remembered: the next fit trains eagerly without trying (or warning) again
    assert training._COMPILE_FAILED
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="torch.compile failed")
        fit_runs(est.set_params(torch_compile=True), normal, idx, [0])


def test_compile_without_the_cpp_wrapper_when_it_fails(monkeypatch):
    """A compile that fails only with inductor's C++ wrapper is retried with its Python one: the
    step stays compiled, without a warning, and later steppers skip the C++ wrapper."""
    from dagmm.engine import training

    real_compile = torch.compile
    calls = []

    def compile_(fn, **kw):
        cpp = kw.get("options", {}).get("cpp_wrapper", False)
        calls.append(cpp)
        if cpp:
            return lambda *a, **k: (_ for _ in ()).throw(RuntimeError("cpp_wrapper: no such op"))
        return real_compile(fn, **kw)

    monkeypatch.setattr(training, "_COMPILE_FAILED", False)
    monkeypatch.setattr(training, "_CPP_WRAPPER_FAILED", False)
    monkeypatch.setattr(torch, "compile", compile_)
    normal, _ = manifold_data()
    m = build_module(DAGMM(**SMALL), 1, normal.shape[1])
    m.reset_parameters(make_generators([0]))
    step = training.Stepper(m, 1e-3, 0.1, 0.005, compile=True)
    x = torch.tensor(normal[None, :64])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="torch.compile failed")
        loss, _ = step(x, torch.ones(1, 64, DAGMM(**SMALL).estimation_hidden))
    assert torch.isfinite(loss).all() and step.compiled and not training._COMPILE_FAILED
    assert calls == [True, False] and training._CPP_WRAPPER_FAILED
    training.Stepper(m, 1e-3, 0.1, 0.005, compile=True)
    assert calls == [True, False, False]


def test_checkpoint_evaluation_equals_a_shorter_training():
    from dagmm.engine.training import compute_energy, estimate_mixture

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    idx = np.stack([np.arange(0, 200), np.arange(100, 300)])
    est = DAGMM(hidden=(6, 3), latent_dim=1, n_components=2, batch_size=64, lr=1e-3, device="cpu")
    seen = {}

    def grab(module, epoch, Xt, tr):
        estimate_mixture(module, Xt, tr)
        seen[epoch] = compute_energy(module, Xt, idx)

    fit_runs(est.set_params(epochs=6), X, idx, [0, 1], checkpoints=(3,), on_checkpoint=grab)
    short, _, Xs = fit_runs(est.set_params(epochs=3), X, idx, [0, 1])
    np.testing.assert_array_equal(seen[3], compute_energy(short, Xs, idx))


def test_every_variant_and_score_at_a_checkpoint_equals_a_shorter_training(real_data_dir):
    """notebooks 01d/01e read both scores off one long training per variant; on the CPU each
    checkpoint must equal a training of that length, also after an earlier checkpoint
    has split the chunk of random draws (Thyroid draws ~35 epochs at once)."""
    from sklearn.metrics import roc_auc_score

    from dagmm.datasets import load_base
    from dagmm.protocol import make_splits
    from dagmm.study import epochs_investigation

    variants = {"DAGMM": {}, "DAGMM (z-score)": {"preprocessing": "zscore"}}
    per_run = epochs_investigation("thyroid", 2, (2, 3), variants=variants, scores=("energy", "recon"),
                                   data_dir=real_data_dir, device="cpu", verbose=False)
    assert len(per_run) == 2 * 2 * 2 * 2
    X, y = load_base("thyroid", real_data_dir)
    s = make_splits("thyroid", y, [1])[0]
    for variant, kw in variants.items():
        for scoring, kind in (("recon", "recon"), ("energy", "energy")):
            for epochs in (2, 3):
                est = DAGMM.from_paper("thyroid", epochs=epochs, scoring=scoring, device="cpu", random_state=1, **kw)
                est.fit(X[s.train_idx])
                want = roc_auc_score(y[s.test_idx], est.anomaly_score(X[s.test_idx]))
                got = per_run[(per_run.variant == variant) & (per_run.score == kind) & (per_run.epochs == epochs)
                              & (per_run.seed == 1)]
                assert got.auroc.item() == pytest.approx(want, abs=1e-9), (variant, kind, epochs)
    with pytest.raises(ValueError, match="scores"):
        epochs_investigation("thyroid", 2, (1,), scores=("likelihood",), data_dir=real_data_dir, device="cpu")
    with pytest.raises(ValueError, match="sets itself"):
        epochs_investigation("thyroid", 2, (1,), variants={"long": {"epochs": 5}}, data_dir=real_data_dir, device="cpu")


def test_energy_vs_recon_findings_pair_by_seed():
    """Synthetic runs in shuffled order: the tests must pair by seed, match scipy's Wilcoxon,
    Holm-adjust within each metric and name the better score."""
    import pandas as pd
    from scipy.stats import wilcoxon

    from dagmm.study import energy_vs_recon_findings
    from dagmm.summary import holm

    rng = np.random.default_rng(0)
    seeds = np.arange(8)
    rows = []
    for variant, gain in (("DAGMM", 0.1), ("DAGMM (z-score)", 0.0)):
        base = rng.uniform(0.3, 0.6, len(seeds))
        for score in ("energy", "recon"):
            for seed in seeds:
                f1 = base[seed] + (gain * (1 + seed / 10) if score == "recon" else 0.0) + rng.normal(0, 1e-3)
                rows.append(dict(dataset="arrhythmia", variant=variant, score=score, epochs=10, seed=int(seed),
                                 run=int(seed), f1=f1, auroc=f1 + 0.3))
    per_run = pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)
    per_run = pd.concat([per_run, per_run.assign(epochs=5, f1=0.0, auroc=0.5)], ignore_index=True)  # not the last
    table, text = energy_vs_recon_findings(per_run, paper_f1=0.498)
    by_seed = per_run[per_run.epochs == 10].pivot_table(index=["variant", "seed"], columns="score", values="f1")
    d = by_seed.loc["DAGMM"]
    row = table[(table.variant == "DAGMM") & (table.compared == "reconstruction error") & (table.metric == "f1")].iloc[0]
    assert row.p_value == pytest.approx(wilcoxon(d["recon"], d["energy"]).pvalue)
    assert row.median_diff == pytest.approx(np.median(d["recon"] - d["energy"]))
    assert row.verdict == "better" and row.direction == 1
    f1_rows = table[table.metric == "f1"]
    assert len(f1_rows) == 3  # two within-variant tests and one variant-against-reference test
    np.testing.assert_allclose(f1_rows.p_holm, holm(f1_rows.p_value.to_numpy()))
    assert "**DAGMM**" in text and "better" in text and "0.498" in text
    with pytest.raises(ValueError, match="both scores"):
        energy_vs_recon_findings(per_run[per_run.score == "energy"])


def test_networks_pickled_with_their_activation_function_still_load():
    """RunMLP used to keep its activation as a function (``act``); it now keeps the name. A module
    pickled the old way unpickles into the same network."""
    import pickle

    from dagmm.engine.layers import RunMLP

    m = RunMLP(2, (6, 4, 1))
    m.reset_parameters(make_generators([0, 1]))
    old_state = {k: v for k, v in m.__dict__.items() if k != "activation"}
    old_state["act"] = torch.tanh
    old = RunMLP.__new__(RunMLP)
    old.__setstate__(old_state)
    x = torch.randn(2, 5, 6)
    assert old.activation == "tanh" and torch.equal(old(x), m(x))
    assert torch.equal(pickle.loads(pickle.dumps(old))(x), m(x))
    with pytest.raises(ValueError, match="activation must be one of"):
        RunMLP(1, (3, 2), activation="gelu")
