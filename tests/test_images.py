"""Image loaders (MVTec AD / Intel layouts), the convolutional compressors and the image study."""
import http.server
import tarfile
import threading
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dagmm import fetch, images
from dagmm.fetch import DataChecksumError, DataFileMissingError, sha256sum

# ----------------------------------------------------------------------------------------------
# fake data sets laid out like the real distributions


def _write_image(path: Path, w: int, h: int, seed: int, fmt: str) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, format=fmt)


MVTEC_FILES = {  # relpath -> (width, height); one non-square, odd-sized image
    "bottle/train/good/000.png": (40, 40),
    "bottle/train/good/001.png": (40, 40),
    "bottle/train/good/002.png": (37, 23),
    "bottle/test/good/000.png": (40, 40),
    "bottle/test/broken_large/000.png": (40, 40),
    "bottle/test/contamination/000.png": (40, 40),
}
INTEL_FILES = {
    "seg_train/forest/1.jpg": (30, 30),
    "seg_train/forest/2.jpg": (30, 17),
    "seg_train/sea/3.jpg": (30, 30),  # another class in seg_train: not used for training
    "seg_test/forest/4.jpg": (30, 30),
    "seg_test/sea/5.jpg": (30, 30),
    "seg_test/street/6.jpg": (30, 30),
}


def _make(root: Path, files: dict, fmt: str) -> dict[str, str]:
    for i, (rel, (w, h)) in enumerate(files.items()):
        _write_image(root / rel, w, h, i, fmt)
    return {rel: sha256sum(root / rel) for rel in files}


@pytest.fixture
def fake_images(tmp_path, monkeypatch):
    """(data_dir, cache_dir) with small MVTec and Intel folders and their manifests pinned."""
    data = tmp_path / "data"
    manifests = {
        "mvtec_ad": _make(data / "mvtec_ad", MVTEC_FILES, "PNG"),
        "intel_image": _make(data / "intel_image", INTEL_FILES, "JPEG"),
    }
    monkeypatch.setattr(images, "read_manifest", lambda name: dict(manifests[name]))
    fetch._VERIFIED.clear()
    yield data, tmp_path / "cache"
    fetch._VERIFIED.clear()


def test_mvtec_layout_labels_and_resize(fake_images):
    data, cache = fake_images
    s = images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache)
    assert s.X.shape == (6, 3, 16, 16) and s.X.dtype == np.float32
    assert 0.0 <= s.X.min() and s.X.max() <= 1.0
    assert list(s.split) == ["test"] * 3 + ["train"] * 3  # sorted paths: test/ before train/
    assert list(s.kind[s.test_idx]) == ["broken_large", "contamination", "good"]
    assert list(s.y) == [1, 1, 0, 0, 0, 0]
    assert s.y[s.train_idx].sum() == 0
    # the odd-sized 37x23 image is squashed to 16x16 exactly as Pillow's bilinear resize does it
    i = s.files.index("bottle/train/good/002.png")
    ref = np.asarray(Image.open(data / "mvtec_ad" / s.files[i]).convert("RGB").resize((16, 16), Image.BILINEAR, reducing_gap=3.0), np.float32)
    np.testing.assert_allclose(s.X[i], ref.transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_intel_one_class_vs_rest(fake_images):
    data, cache = fake_images
    s = images.load_intel("forest", 12, data, cache_dir=cache)
    assert s.X.shape == (5, 3, 12, 12)  # seg_train/sea is not loaded
    assert {s.files[i] for i in s.train_idx} == {"seg_train/forest/1.jpg", "seg_train/forest/2.jpg"}
    assert dict(zip(s.kind[s.test_idx], s.y[s.test_idx])) == {"forest": 0, "sea": 1, "street": 1}


def test_resized_arrays_are_cached_by_size(fake_images, monkeypatch):
    data, cache = fake_images
    a = images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 1

    def no_decoding(*a, **k):
        raise AssertionError("decoded although a cache exists")

    monkeypatch.setattr(images, "_decode", no_decoding)
    b = images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache)
    np.testing.assert_array_equal(a.X, b.X)
    with pytest.raises(AssertionError, match="decoded"):
        images.load_mvtec("bottle", 20, data, download=False, cache_dir=cache)  # another size: new key


def test_missing_folder_is_a_clear_error(fake_images, tmp_path):
    _, cache = fake_images
    empty = tmp_path / "empty"
    empty.mkdir()  # the data folder exists, the dataset folders do not
    with pytest.raises(DataFileMissingError, match="bottle.tar.xz") as e:
        images.load_mvtec("bottle", 16, empty, download=False, cache_dir=cache)
    assert str(empty / "mvtec_ad" / "bottle") in str(e.value)
    with pytest.raises(DataFileMissingError, match="Kaggle needs a login"):
        images.load_intel("forest", 16, empty, cache_dir=cache)


def test_missing_file_and_checksum_mismatch_name_the_file(fake_images):
    data, cache = fake_images
    victim = data / "mvtec_ad" / "bottle" / "test" / "good" / "000.png"
    _write_image(victim, 40, 40, 99, "PNG")  # same name and size, different pixels
    with pytest.raises(DataChecksumError) as e:
        images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache)
    assert str(victim) in str(e.value) and sha256sum(victim) in str(e.value)
    victim.unlink()
    with pytest.raises(DataFileMissingError, match="000.png"):
        images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache)


def test_degenerate_image_and_bad_size_are_value_errors(fake_images, monkeypatch):
    data, cache = fake_images
    tiny = data / "mvtec_ad" / "bottle" / "test" / "good" / "000.png"
    _write_image(tiny, 4, 40, 0, "PNG")
    manifest = images.read_manifest("mvtec_ad")  # the fixture's; re-pin the changed file
    manifest["bottle/test/good/000.png"] = sha256sum(tiny)
    monkeypatch.setattr(images, "read_manifest", lambda name: dict(manifest))
    with pytest.raises(ValueError, match=r"000.png: image is 4x40 pixels"):
        images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache)
    for bad in (0, 3, 16.0, "64", True):
        with pytest.raises(ValueError, match="image size"):
            images.load_mvtec("bottle", bad, data, download=False, cache_dir=cache)
    with pytest.raises(ValueError, match="Unknown image dataset"):
        images.load_image_dataset("mnist")


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_mvtec_category_is_downloaded_from_a_mirror_and_verified(fake_images, http_server, tmp_path, monkeypatch):
    data, cache = fake_images
    served, url = http_server
    (served / "mvtec_ad").mkdir()
    with tarfile.open(served / "mvtec_ad" / "bottle.tar.xz", "w:xz") as tar:
        tar.add(data / "mvtec_ad" / "bottle", arcname="bottle")
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    target = tmp_path / "fresh"
    target.mkdir()  # an existing, empty data folder: the category is downloaded into it
    s = images.load_mvtec("bottle", 16, target, cache_dir=cache)
    assert (target / "mvtec_ad" / "bottle" / "train" / "good" / "000.png").exists()
    assert s.X.shape == (6, 3, 16, 16)
    # a mirror without the archive: the error names the canonical address
    monkeypatch.setenv("DAGMM_MIRROR_URL", url + "/nothing-here")
    (tmp_path / "fresh2").mkdir()
    with pytest.raises(DataFileMissingError, match="mydrive.ch"):
        images.load_mvtec("bottle", 16, tmp_path / "fresh2", cache_dir=cache)


def test_missing_data_dir_is_named_and_nothing_is_downloaded_into_it(fake_images, http_server, tmp_path, monkeypatch):
    data, cache = fake_images
    served, url = http_server
    (served / "mvtec_ad").mkdir()
    with tarfile.open(served / "mvtec_ad" / "bottle.tar.xz", "w:xz") as tar:
        tar.add(data / "mvtec_ad" / "bottle", arcname="bottle")
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)  # the download would succeed: it must not happen
    missing = tmp_path / "typo" / "datasets"
    for load in (lambda: images.load_mvtec("bottle", 16, missing, cache_dir=cache),
                 lambda: images.load_intel("forest", 16, missing, cache_dir=cache),
                 lambda: images.load_image_dataset("mvtec_bottle", 16, missing, cache_dir=cache)):
        with pytest.raises(DataFileMissingError) as e:
            load()
        assert str(e.value) == (f"data directory {missing} does not exist (from the data_dir argument); "
                                "pass the folder that holds the data files, see data/README.md")
        assert not (tmp_path / "typo").exists()
    monkeypatch.setenv("DAGMM_DATA_DIR", str(missing))
    with pytest.raises(DataFileMissingError, match=r"does not exist \(from DAGMM_DATA_DIR\); set it to"):
        images.load_mvtec("bottle", 16, cache_dir=cache)
    assert not (tmp_path / "typo").exists()


# ----------------------------------------------------------------------------------------------
# a damaged resized-image cache is detected, named and rebuilt


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


def _resave(change):
    def damage(path: Path) -> None:
        np.save(path, change(np.load(path)))
    return damage


def _one_value_changed(X):
    X = X.copy()
    X[0, 0, 0, 0] = 0.5 if X[0, 0, 0, 0] != 0.5 else 0.25  # still a valid pixel: only the checksum sees it
    return X


DAMAGE = {
    "truncated": (_truncate, "cannot be read"),
    "empty file": (lambda p: p.write_bytes(b""), "cannot be read"),
    "garbage": (_garbage, "cannot be read"),
    "all NaN": (_resave(lambda X: np.full_like(X, np.nan)), "does not match the sha256"),
    "one inf": (_resave(lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.inf, X).astype(np.float32)), "does not match the sha256"),
    "one value changed": (_resave(_one_value_changed), "does not match the sha256"),
    "wrong shape": (_resave(lambda X: X[:2]), "expected float32 (6, 3, 16, 16)"),
    "wrong dtype": (_resave(lambda X: X.astype(np.float64)), "holds float64"),
    "no checksum record": (lambda p: p.with_suffix(".json").unlink(), "has no checksum record"),
    "garbage record": (lambda p: p.with_suffix(".json").write_text("{not json"), "unreadable checksum record"),
}


def _no_decoding(*a, **k):
    raise AssertionError("decoded although a sound cache exists")


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_cache_is_named_rebuilt_and_equal_to_a_fresh_build(fake_images, tmp_path, monkeypatch, damage):
    data, cache_dir = fake_images
    fresh = images.load_mvtec("bottle", 16, data, download=False, cache_dir=tmp_path / "fresh_cache").X
    images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache_dir)
    (cache,) = cache_dir.glob("*.npy")
    hurt, reason = DAMAGE[damage]
    hurt(cache)
    with pytest.warns(UserWarning, match="rebuilding") as rec:
        rebuilt = images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache_dir).X
    (w,) = [w for w in rec if "rebuilding" in str(w.message)]
    assert issubclass(w.category, images.CacheRebuiltWarning)
    assert f"image cache {cache} " in str(w.message) and reason in str(w.message)
    np.testing.assert_array_equal(rebuilt, fresh)
    # the rebuilt cache is sound: the next load reads it without a warning and without decoding
    monkeypatch.setattr(images, "_decode", _no_decoding)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache_dir).X
    np.testing.assert_array_equal(again, fresh)


def test_nan_cache_with_a_matching_record_is_still_rebuilt(fake_images, tmp_path):
    """A cache full of NaN is refused even if its record was rewritten to match it."""
    data, cache_dir = fake_images
    fresh = images.load_intel("forest", 12, data, cache_dir=cache_dir).X
    (cache,) = cache_dir.glob("*.npy")
    bad = np.full_like(fresh, np.nan)
    images._write_cache(cache, bad)  # as a buggy decoder would have written it
    with pytest.warns(images.CacheRebuiltWarning, match=r"holds NaN, inf or values outside \[0, 1\]") as rec:
        rebuilt = images.load_intel("forest", 12, data, cache_dir=cache_dir).X
    assert str(cache) in str(rec[0].message)
    np.testing.assert_array_equal(rebuilt, fresh)


def test_interrupted_cache_write_leaves_no_half_written_file(fake_images, monkeypatch):
    data, cache_dir = fake_images
    real_save = np.save

    def interrupted_save(fh, X, *a, **k):
        fh.write(b"\x93NUMPY half an array")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache_dir)
    assert list(cache_dir.iterdir()) == []  # neither the cache nor a temporary file is left
    monkeypatch.setattr(np, "save", real_save)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean first build: nothing to warn about
        s = images.load_mvtec("bottle", 16, data, download=False, cache_dir=cache_dir)
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".json", ".npy"] and s.X.shape == (6, 3, 16, 16)


def test_pinned_manifests_equal_the_shared_ones(real_data_dir):
    for name in ("mvtec_ad", "intel_image"):
        shared = (real_data_dir / name / "FILES.sha256")
        if not shared.exists():
            pytest.skip(f"{shared} not available")
        pinned = images.read_manifest(name)
        listed = dict((r.strip(), d) for d, r in (ln.split(maxsplit=1) for ln in shared.read_text().splitlines() if ln.strip()))
        assert pinned == listed
    m = images.read_manifest("mvtec_ad")
    assert sum(r.startswith("bottle/train/good/") for r in m) == 209
    assert sum(r.startswith("bottle/test/") for r in m) == 83


# ----------------------------------------------------------------------------------------------
# convolutional compressors

import torch  # noqa: E402
from sklearn.base import clone  # noqa: E402

from dagmm.conv import ConvCompressor, ResConvCompressor  # noqa: E402
from dagmm.image_study import ConvDAGMM, aggregate_images, by_kind_table, run_image_method, with_seeds  # noqa: E402
from dagmm.images import ImageSet  # noqa: E402
from dagmm.engine.training import make_generators  # noqa: E402

ARCHS = {"conv": ConvCompressor, "resconv": ResConvCompressor}


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core CPU many small convolutions run far faster so."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_compressor_maps_a_batch_to_the_right_shapes(arch):
    torch.manual_seed(0)
    net = ARCHS[arch](2, 6)  # the seeds' architecture: 64x64, channels 32-64-128-256
    net.reset_parameters(make_generators([0, 1]))
    z, x_hat = net(torch.rand(2, 3, 3, 64, 64))
    assert z.shape == (2, 3, 6) and x_hat.shape == (2, 3, 3, 64, 64)
    assert 0 < x_hat.min() and x_hat.max() < 1  # sigmoid output
    enc = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (4, 4)]
    assert [m.out_channels // 2 for m in enc] == [32, 64, 128, 256]
    with pytest.raises(ValueError, match="multiple of 16"):
        ARCHS[arch](1, 6, image_size=40)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_runs_are_independent_and_equal_to_single_runs(arch):
    """Run r of an R-run module computes exactly what a 1-run module seeded like run r computes."""
    x = torch.rand(2, 4, 3, 16, 16)
    both = ARCHS[arch](2, 3, channels=(4, 8), image_size=16)
    both.reset_parameters(make_generators([5, 9]))
    z2, xh2 = both(x)
    for r, seed in enumerate((5, 9)):
        one = ARCHS[arch](1, 3, channels=(4, 8), image_size=16)
        one.reset_parameters(make_generators([seed]))
        z1, xh1 = one(x[r : r + 1])
        torch.testing.assert_close(z1[0], z2[r], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(xh1[0], xh2[r], atol=1e-5, rtol=1e-5)


def _blobs(n: int, size: int, seed: int, anomalous: bool = False) -> np.ndarray:
    """Smooth random images; anomalies carry a bright square."""
    rng = np.random.default_rng(seed)
    g = np.linspace(-1, 1, size)
    cx, cy = rng.uniform(-0.5, 0.5, (2, n, 1, 1))
    base = np.exp(-((g[None, None, :] - cx) ** 2 + (g[None, :, None] - cy) ** 2) * 3)  # (n, size, size)
    X = np.stack([base * c for c in (0.6, 0.4, 0.2)], 1) + rng.normal(0, 0.02, (n, 3, size, size))
    if anomalous:
        X[:, :, 2:7, 2:7] = 1.0
    return np.clip(X, 0, 1).astype(np.float32)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_training_lowers_the_loss_and_gradients_reach_every_layer(arch):
    X = _blobs(48, 16, 0)
    est = ConvDAGMM(architecture=arch, channels=(8, 16), latent_dim=3, epochs=6, batch_size=16, lr=3e-3, device="cpu", random_state=0)
    module = est._build_module(1, (3, 16, 16))
    module.reset_parameters(make_generators([0]))
    loss, _ = module.loss(torch.as_tensor(X[None, :16]), lambda_energy=0.1, lambda_cov=0.005)
    loss.sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    est.fit(X)
    h = est.loss_history_
    assert np.isfinite(h).all() and h[-1] < 0.7 * h[0] and (np.diff(h) < 0).mean() >= 0.75


def test_conv_dagmm_beats_chance_and_the_autoencoder_control_skips_the_mixture():
    Xtr, Xn, Xa = _blobs(96, 16, 0), _blobs(20, 16, 1), _blobs(20, 16, 2, anomalous=True)
    X = np.concatenate([Xn, Xa])
    y = np.r_[np.zeros(20), np.ones(20)]
    from sklearn.metrics import roc_auc_score

    kw = dict(channels=(8, 16), latent_dim=3, epochs=10, batch_size=16, lr=3e-3, device="cpu", random_state=0)
    dagmm = ConvDAGMM(**kw).fit(Xtr)
    assert roc_auc_score(y, dagmm.anomaly_score(X)) > 0.8
    assert roc_auc_score(y, -dagmm.score_samples(X)) > 0.8
    assert set(np.unique(dagmm.predict(X))) <= {-1, 1} and dagmm.transform(X).shape == (40, 5)  # -1 = anomaly
    ae = clone(dagmm).set_params(lambda_energy=0.0, lambda_cov=0.0, scoring="recon").fit(Xtr)
    assert roc_auc_score(y, ae.anomaly_score(X)) > 0.8
    # without the mixture terms the loss is the reconstruction error alone
    out = ae.module_(torch.as_tensor(Xn[None]))
    loss, _ = ae.module_.loss(torch.as_tensor(Xn[None]), lambda_energy=0.0, lambda_cov=0.0)
    torch.testing.assert_close(loss[0], (out.x - out.x_hat).pow(2).flatten(2).sum(-1).mean(), rtol=1e-5, atol=1e-4)


def test_bad_images_and_parameters_are_clear_value_errors():
    est = ConvDAGMM(channels=(8, 16), epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        est.fit(np.zeros((4, 48)))
    with pytest.raises(ValueError, match="square"):
        est.fit(np.zeros((4, 3, 16, 12)))
    with pytest.raises(ValueError, match="multiple of 4"):
        est.fit(np.zeros((4, 3, 18, 18)))
    bad = np.zeros((4, 3, 16, 16))
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    for k, v in dict(architecture="vgg", channels=(8, 0), scoring="mse", preprocessing="minmax", lr=-1.0, latent_dim=0).items():
        with pytest.raises(ValueError, match=k):
            clone(est).set_params(**{k: v}).fit(np.zeros((4, 3, 16, 16), np.float32))
    fitted = clone(est).fit(_blobs(8, 16, 0))
    with pytest.raises(ValueError, match="fitted on"):
        fitted.anomaly_score(np.zeros((2, 3, 32, 32), np.float32))


def test_image_protocol_metrics_tables_and_seed_columns():
    Xtr, Xn, Xa = _blobs(48, 16, 0), _blobs(10, 16, 1), _blobs(12, 16, 2, anomalous=True)
    X = np.concatenate([Xtr, Xn, Xa])
    kind = np.array(["good"] * 58 + ["square"] * 6 + ["square2"] * 6)
    data = ImageSet("toy", X, (kind != "good").astype(np.int64), np.array(["train"] * 48 + ["test"] * 22), kind, tuple(map(str, range(70))))
    est = ConvDAGMM(channels=(8, 16), latent_dim=3, epochs=3, batch_size=16, lr=3e-3, device="cpu")
    per_run, art = run_image_method(data, est, [0, 1], method="ConvDAGMM", n_examples=3, verbose=False)
    assert list(per_run.seed) == [0, 1] and {"auroc_square", "auroc_square2", "f1_train95"} <= set(per_run.columns)
    a = art[0]
    # the label-free threshold is the 95th percentile of the training scores
    assert a["threshold"] == pytest.approx(np.percentile(a["train_scores"], 95))
    assert per_run.recall_train95[0] == pytest.approx(np.mean(a["scores"][a["y"] == 1] > a["threshold"]))
    assert a["examples"]["most_anomalous"]["x_hat"].shape == (3, 3, 16, 16)
    assert a["examples"]["most_anomalous"]["scores"][0] == a["scores"].max()
    table = aggregate_images(per_run)
    assert table.n_runs.tolist() == [2] and "f1_train95_mean" in table
    kinds = by_kind_table(per_run)
    assert kinds.anomaly_type.tolist() == ["square", "square2"] and (kinds.n_runs == 2).all()
    import pandas as pd

    pub = pd.DataFrame(dict(source=["s"], table=["framework1_conv"], dataset=["toy"], method=["ConvDAGMM"], setting=[""],
                            precision=[0.4], recall=[0.5], f1=[np.nan], auroc=[0.705], note=[""]))
    t = with_seeds(table, pub, "framework1_conv", "ConvDAGMM", "ConvDAGMM")
    assert t.seed_auroc.tolist() == [0.705]
