"""Behaviour of the study's figures (matplotlib Agg): what a reader of reports/figures/ must be able to see."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dagmm import plotting  # noqa: E402
from dagmm.baselines import figures  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


# ---------------------------------------------------------------- metric_bars


def _metric_table() -> pd.DataFrame:
    """Two datasets whose method lists differ (as when a variant failed on one)."""
    rows = []
    for ds, methods in [("kddcup", ["DAGMM", "DAGMM-VAE", "DAGMM-VQVAE"]),
                        ("thyroid", ["DAGMM", "DAGMM modified loss (hinge)"])]:
        for k, m in enumerate(methods):
            rows.append(dict(dataset=ds, method=m, f1_mean=0.5 + 0.1 * k, f1_std=0.05, auroc_mean=0.8 + 0.05 * k,
                             auroc_std=np.nan))
    return pd.DataFrame(rows)


def _visible_ytick_texts(ax) -> list[str]:
    return [t.get_text().replace("\n", " ") for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]


def test_metric_bars_every_panel_names_its_own_methods_top_down():
    table = _metric_table()
    fig = plotting.metric_bars(table)
    _renderer(fig)
    assert len(fig.axes) == 4
    for ax in fig.axes:
        ds = ax.get_title().split(":")[0]
        expected = list(table[table.dataset == ds].method)
        assert _visible_ytick_texts(ax) == expected, ax.get_title()
        assert list(ax.get_yticks()) == list(range(len(expected)))
        assert ax.yaxis_inverted()  # the table's first method on top


def test_metric_bars_legend_explains_every_marker():
    table = _metric_table()
    reported = pd.DataFrame([dict(dataset="thyroid", method="DAGMM modified loss (hinge)", f1=0.3, auroc=np.nan)])
    fig = plotting.metric_bars(table, reported=reported, reported_label="reported (seed_003)")
    diamonds = [ln for ax in fig.axes for ln in ax.lines if ln.get_marker() == "D"]
    assert len(diamonds) == 1  # the one finite reported number, on a method that is not the first
    assert diamonds[0].get_xdata()[0] == pytest.approx(0.3)
    texts = _legend_texts(fig)
    assert "reported (seed_003)" in texts
    assert any(t.startswith("DAGMM (reference)") for t in texts)
    assert any("std" in t for t in texts)
    handles = [h for lg in fig.legends for h in lg.legend_handles]
    assert any(getattr(h, "get_marker", lambda: None)() == "D" for h in handles)


def test_metric_bars_no_diamond_entry_without_reported_numbers():
    fig = plotting.metric_bars(_metric_table())
    assert not any("reported" in t for t in _legend_texts(fig))
    assert not [ln for ax in fig.axes for ln in ax.lines if ln.get_marker() == "D"]


def test_methods_by_datasets_legend_names_paper_marker_even_if_first_dataset_has_none():
    rows = []
    for ds in ("kddcup_rev", "thyroid"):
        for m in ("DAGMM", "OC-SVM"):
            rows.append(dict(dataset=ds, method=m, f1_mean=0.6, f1_std=0.1, auroc_mean=0.9, auroc_std=0.01,
                             paper_f1=np.nan if ds == "kddcup_rev" else 0.5))
    fig = figures.methods_by_datasets(pd.DataFrame(rows), ["OC-SVM", "DAGMM"], ["kddcup_rev", "thyroid"])
    texts = _legend_texts(fig)
    assert "paper" in texts and "ours" in texts
    assert any("0.5" in t for t in texts)  # the dotted chance line of the AUROC panels


# ---------------------------------------------------------------- sweep_curves


def _sweep(methods, datasets=("kddcup", "thyroid")) -> pd.DataFrame:
    rows = []
    for d, ds in enumerate(datasets):
        for k, m in enumerate(methods):
            for p in (10, 20, 30, 40):
                rows.append(dict(dataset=ds, method=m, percentile=p, n_runs=3,
                                 f1_mean=0.2 + 0.1 * k + 0.01 * p + 0.05 * d, f1_std=0.01))
    return pd.DataFrame(rows)


def _containers(ax, label):
    return [c for c in ax.containers if c.get_label() == label]


def _assert_reference_curve(ax, expected: pd.DataFrame, label="DAGMM (reference)"):
    (c,) = _containers(ax, label)
    line = c.lines[0]
    assert mcolors.same_color(line.get_color(), "k")
    assert line.get_linestyle() == "--"
    np.testing.assert_allclose(np.asarray(line.get_xdata(), dtype=float), expected.percentile.to_numpy(dtype=float))
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), expected.f1_mean.to_numpy(dtype=float))


def test_sweep_curves_draws_the_reference_black_dashed_and_labelled():
    sw = _sweep(["DAGMM", "DAGMM-VAE", "DAGMM-VQVAE"])
    fig = plotting.sweep_curves(sw, reference="DAGMM")
    assert [ax.get_title() for ax in fig.axes] == ["kddcup", "thyroid"]
    for ax in fig.axes:
        ds = ax.get_title()
        _assert_reference_curve(ax, sw[(sw.dataset == ds) & (sw.method == "DAGMM")])
        for m in ("DAGMM-VAE", "DAGMM-VQVAE"):
            (c,) = _containers(ax, m)
            assert not mcolors.same_color(c.lines[0].get_color(), "k")
        assert not _containers(ax, "DAGMM")
    texts = _legend_texts(fig)
    assert {"DAGMM (reference)", "DAGMM-VAE", "DAGMM-VQVAE"} <= set(texts)
    assert len(texts) == len(set(texts))


def test_sweep_curves_default_reference_is_dagmm():
    sw = _sweep(["DAGMM", "DAGMM Laplacian"])
    fig = plotting.sweep_curves(sw)
    for ax in fig.axes:
        _assert_reference_curve(ax, sw[(sw.dataset == ax.get_title()) & (sw.method == "DAGMM")])


def test_sweep_curves_takes_the_reference_from_another_sweep_table():
    variants = _sweep(["DAGMM-VAE", "DAGMM-VQVAE"])
    heads = _sweep(["DAGMM", "DAGMM modified inference"], datasets=("kddcup", "thyroid", "arrhythmia"))
    fig = plotting.sweep_curves(variants, reference="DAGMM", reference_sweep=heads)
    assert [ax.get_title() for ax in fig.axes] == ["kddcup", "thyroid"]  # the other table's datasets are not added
    for ax in fig.axes:
        _assert_reference_curve(ax, heads[(heads.dataset == ax.get_title()) & (heads.method == "DAGMM")])
        assert not _containers(ax, "DAGMM modified inference")  # only the reference is taken from it
    assert "DAGMM modified inference" not in _legend_texts(fig)


def test_sweep_curves_says_so_when_the_reference_is_missing():
    fig = plotting.sweep_curves(_sweep(["DAGMM-VAE"]), reference="DAGMM")
    for ax in fig.axes:
        assert not _containers(ax, "DAGMM (reference)")
        assert any("no DAGMM sweep" in t.get_text() for t in ax.texts)
    fig = plotting.sweep_curves(_sweep(["DAGMM-VAE"]), reference=None)
    assert not any(ax.texts for ax in fig.axes)


# ---------------------------------------------------------------- energy / score histograms


def _heavy_tailed(n=4000, seed=0):
    """Normal energies around 0, anomalies spread log-uniformly over 1e0..1e20."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    e = np.where(y == 0, rng.normal(0.0, 3.0, n), 10 ** rng.uniform(0, 20, n))
    return e, y


def _threshold_line(ax, prefix):
    (line,) = [ln for ln in ax.lines if ln.get_label().startswith(prefix)]
    return float(line.get_xdata()[0])


def _nonempty_bins(ax, i):
    """Bins of the i-th histogram drawn (0: normal, 1: anomaly) that hold samples."""
    return sum(p.get_height() > 0 for p in ax.containers[i].patches)


def _assert_line_at_quantile(ax, e, x, rho):
    assert x == pytest.approx(np.quantile(e, 1 - rho))
    # on screen: the samples right of the line are the top rho
    px = ax.transData.transform(np.column_stack([e, np.zeros_like(e)]))[:, 0]
    line_px = ax.transData.transform([[x, 0.0]])[0, 0]
    assert np.mean(px > line_px) == pytest.approx(rho, abs=2 / len(e))


def test_energy_histograms_signed_log_axis_when_energies_span_orders_of_magnitude():
    e, y = _heavy_tailed()
    rho = 0.2
    fig = plotting.energy_histograms({"kddcup": dict(energy=e, y=y)}, {"kddcup": rho})
    ax = fig.axes[0]
    _renderer(fig)
    assert ax.get_xscale() != "linear"
    assert "log" in ax.get_xlabel()
    _assert_line_at_quantile(ax, e, _threshold_line(ax, "top"), rho)
    assert _nonempty_bins(ax, 0) >= 5 and _nonempty_bins(ax, 1) >= 10  # both classes have a shape, not one spike
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 4 and all(t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi)


def test_energy_histograms_stay_linear_for_a_narrow_range():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(900), np.ones(100)].astype(int)
    e = np.where(y == 0, rng.normal(0, 2, 1000), rng.normal(8, 3, 1000))
    fig = plotting.energy_histograms({"thyroid": dict(energy=e, y=y)}, {"thyroid": 0.1})
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert ax.get_xlabel() == "sample energy"
    _assert_line_at_quantile(ax, e, _threshold_line(ax, "top"), 0.1)


def test_energy_histograms_xscale_can_be_forced_and_ignores_nonfinite():
    e, y = _heavy_tailed(500)
    e[:3] = np.nan
    fig = plotting.energy_histograms({"a": dict(energy=e, y=y)}, {"a": 0.2}, xscale="linear")
    assert fig.axes[0].get_xscale() == "linear"
    fig = plotting.energy_histograms({"a": dict(energy=e, y=y)}, {"a": 0.2}, xscale="signed-log")
    assert fig.axes[0].get_xscale() != "linear"
    assert _threshold_line(fig.axes[0], "top") == pytest.approx(np.quantile(e[np.isfinite(e)], 0.8))
    with pytest.raises(ValueError, match="xscale"):
        plotting.energy_histograms({"a": dict(energy=e, y=y)}, xscale="log")


def test_threshold_histograms_signed_log_for_wide_scores_linear_for_narrow():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(20), np.ones(63)].astype(int)
    conv_dagmm = np.where(y == 0, rng.uniform(-27.6, -17, 83), -27 + rng.lognormal(1.5, 1.5, 83))
    conv_dagmm[-1] = 512.0
    recon = np.where(y == 0, rng.normal(18, 3, 83), rng.normal(35, 15, 83)).clip(5)
    artifacts = {"mvtec_bottle: ConvDAGMM": dict(scores=conv_dagmm, y=y, rho=0.76, threshold=-20.0),
                 "mvtec_bottle: ConvAE (recon. error)": dict(scores=recon, y=y, rho=0.76, threshold=33.0)}
    fig = plotting.threshold_histograms(artifacts)
    _renderer(fig)
    ax_e, ax_r = fig.axes
    assert ax_e.get_xscale() != "linear" and ax_r.get_xscale() == "linear"
    _assert_line_at_quantile(ax_e, conv_dagmm, _threshold_line(ax_e, "top-rho"), 0.76)
    _assert_line_at_quantile(ax_r, recon, _threshold_line(ax_r, "top-rho"), 0.76)
    assert _threshold_line(ax_e, "train 95th") == pytest.approx(-20.0)
    assert _nonempty_bins(ax_e, 0) >= 4  # the normals are no longer one spike


def test_spans_orders():
    assert plotting.spans_orders(np.r_[np.linspace(0, 1, 100), 1e6])
    assert not plotting.spans_orders(np.linspace(-5, 35, 100))
    assert not plotting.spans_orders(np.full(10, 3.0))
    assert not plotting.spans_orders(np.array([np.nan, 1.0]))


# ---------------------------------------------------------------- ranked_images


def _ranked_inputs(most, least, size=32, seed=0):
    rng = np.random.default_rng(seed)
    kinds = np.array(most + least)
    X = rng.random((len(kinds), 3, size, size)).astype(np.float32)
    labels = np.array([0 if k == "good" else 1 for k in kinds])
    n = len(most)
    groups = {"most_anomalous": dict(rows=np.arange(n), scores=np.linspace(512, 17.8, n)),
              "least_anomalous": dict(rows=np.arange(n, 2 * n), scores=np.linspace(-27.6, -26.9, len(least)))}
    return X, groups, kinds, labels


@pytest.mark.parametrize("most, least", [
    (["contamination"] * 3 + ["broken_small", "contamination", "broken_small", "broken_large", "broken_large"],
     ["contamination", "good", "good", "good", "contamination", "good", "good", "broken_large"]),
    (["manipulated_front", "fabric_interior", "combined", "scratch_neck"],
     ["good", "good", "thread_side", "good"]),
])
def test_ranked_images_titles_do_not_overlap(most, least):
    X, groups, kinds, labels = _ranked_inputs(most, least)
    fig = plotting.ranked_images(X, groups, kinds, labels, "mvtec_bottle: ConvDAGMM run 0")
    r = _renderer(fig)
    n = len(most)
    grid = np.array(fig.axes).reshape(2, n)
    sup = fig._suptitle.get_window_extent(r)
    for b in range(2):
        for i in range(n):
            title = grid[b, i].title.get_window_extent(r)
            assert title.width > 0
            assert not title.overlaps(sup)
            assert fig.bbox.containsx(title.x0) and fig.bbox.containsx(title.x1)
            if i + 1 < n:  # the neighbour to the right: its title and its image
                assert not title.overlaps(grid[b, i + 1].title.get_window_extent(r)), (b, i)
                assert not title.overlaps(grid[b, i + 1].get_window_extent(r)), (b, i)
            if b > 0:  # the row above: every image and title
                for j in range(n):
                    assert not title.overlaps(grid[b - 1, j].get_window_extent(r)), (b, i, j)
                    assert not title.overlaps(grid[b - 1, j].title.get_window_extent(r)), (b, i, j)
            assert not title.overlaps(grid[b, i].get_window_extent(r))  # nor its own image


def test_ranked_images_titles_keep_kind_and_score():
    X, groups, kinds, labels = _ranked_inputs(["manipulated_front"], ["good"])
    fig = plotting.ranked_images(X, groups, kinds, labels, "x")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].replace("\n", "") == "manipulated_front512"
    assert titles[1] == "good\n-27.6"


def test_a_few_large_scores_that_squeeze_the_rest_into_one_bin_get_a_signed_log_axis():
    # ConvDAGMM on MVTec: most energies within a few units of -27, a tail up to a few hundred
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(-27, 1.0, 60), rng.uniform(-20, 100, 20), [358.0]])
    assert plotting.spans_orders(v)
    assert not plotting.spans_orders(rng.normal(0, 1, 500))  # a bell shape stays linear
