"""Image loaders (MVTec AD / Intel layouts), the convolutional compressors and the image study."""
import http.server
import tarfile
import threading
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
    s = images.load_mvtec("bottle", 16, target, cache_dir=cache)
    assert (target / "mvtec_ad" / "bottle" / "train" / "good" / "000.png").exists()
    assert s.X.shape == (6, 3, 16, 16)
    # a mirror without the archive: the error names the canonical address
    monkeypatch.setenv("DAGMM_MIRROR_URL", url + "/nothing-here")
    with pytest.raises(DataFileMissingError, match="mydrive.ch"):
        images.load_mvtec("bottle", 16, tmp_path / "fresh2", cache_dir=cache)


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
