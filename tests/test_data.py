"""Data directory resolution, checksums, downloads, and the paper's dataset definitions."""
import gzip
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from dagmm import datasets, fetch, paths
from dagmm.fetch import DataChecksumError, DataFile, DataFileMissingError, fetch_file, resolve_data_dir, sha256sum

KDD_NAMES = "back,normal,smurf.\r\n" + "".join(
    f"{n}: {'symbolic' if n in ('protocol_type', 'service', 'flag', 'land', 'logged_in', 'is_host_login', 'is_guest_login') else 'continuous'}.\r\n"
    for n in ["duration", "protocol_type", "service", "flag"] + [f"f{i}" for i in range(37)]
)


def _kdd_row(proto, service, flag, label, v):
    nums = [str(v)] * 37
    return ",".join(["1", proto, service, flag] + nums + [label])


def make_fake_data(root: Path) -> None:
    """Small files laid out like the real distribution."""
    (root / "kddcup99").mkdir(parents=True)
    rows = [
        _kdd_row("tcp", "http", "SF", "normal.", 1),
        _kdd_row("udp", "dns", "SF", "normal.", 2),
        _kdd_row("icmp", "ecr_i", "REJ", "smurf.", 3),
        _kdd_row("tcp", "http", "S0", "neptune.", 4),
    ] + [_kdd_row("icmp", "ecr_i", "SF", "smurf.", i) for i in range(16)]
    with gzip.open(root / "kddcup99" / "kddcup.data_10_percent.gz", "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    (root / "kddcup99" / "kddcup.names").write_bytes(KDD_NAMES.encode())
    (root / "odds").mkdir()
    rng = np.random.default_rng(0)
    for name, d in (("thyroid", 6), ("arrhythmia", 274)):
        savemat(root / "odds" / f"{name}.mat", {"X": rng.normal(size=(40, d)), "y": (np.arange(40) % 8 == 0).astype(float)[:, None]})
    make_fake_adbench(root)


def make_fake_adbench(root: Path) -> None:
    """One small .npz per ADBench set, with ADBench's keys X and y: set i has 20 + i rows and 2 + i % 5 features."""
    (root / "adbench").mkdir()
    rng = np.random.default_rng(1)
    for i, file in enumerate(datasets.ADBENCH.values()):
        n = 20 + i
        np.savez(root / "adbench" / file, X=rng.normal(size=(n, 2 + i % 5)), y=(np.arange(n) % 5 == 0).astype(np.int32))


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    root = tmp_path / "data"
    make_fake_data(root)
    for rel, entry in list(fetch.REGISTRY.items()):
        monkeypatch.setitem(fetch.REGISTRY, rel, DataFile(rel, sha256sum(root / rel), entry.url, entry.page))
    datasets._kddcup_raw.cache_clear()
    datasets._odds.cache_clear()
    fetch._VERIFIED.clear()
    yield root
    datasets._kddcup_raw.cache_clear()
    datasets._odds.cache_clear()
    fetch._VERIFIED.clear()


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("DAGMM_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert resolve_data_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv("DAGMM_DATA_DIR")
    assert resolve_data_dir() == paths.DATA_RAW


def test_kddcup_definition_on_generated_file(fake_data):
    X, y = datasets.load_dataset("kddcup", fake_data)
    assert X.dtype == np.float32 and y.dtype == np.int64
    # 38 numeric columns + one-hot of 3 protocols, 3 services, 3 flags
    assert X.shape == (20, 38 + 3 + 3 + 3)
    np.testing.assert_array_equal(y[:4], [1, 1, 0, 0])  # normal. is the anomaly class
    names = datasets.kddcup_feature_names(fake_data)
    assert "service=http" in names and "protocol_type=icmp" in names
    onehot = X[:, 38:]
    assert (onehot.sum(1) == 3).all()


def test_kddcup_rev_is_all_normals_plus_a_quarter_as_many_attacks(fake_data):
    X, y = datasets.load_dataset("kddcup_rev", fake_data, random_state=0)
    assert (y == 0).sum() == 2 and (y == 1).sum() == 0  # 2 normals -> 2 // 4 = 0 attacks
    Xb, yb = datasets.load_base("kddcup_rev", fake_data)
    assert yb.sum() == 18  # attacks are the anomalies
    big = np.r_[np.zeros(400), np.ones(1000)].astype(np.int64)
    r0, r1 = datasets.draw_rows("kddcup_rev", big, 0), datasets.draw_rows("kddcup_rev", big, 1)
    assert (big[r0] == 0).sum() == 400 and (big[r0] == 1).sum() == 100
    assert not np.array_equal(r0, r1)  # redrawn per seed
    np.testing.assert_array_equal(r0, datasets.draw_rows("kddcup_rev", big, 0))


def test_odds_loaders(fake_data):
    for name, d in (("thyroid", 6), ("arrhythmia", 274)):
        X, y = datasets.load_dataset(name, fake_data)
        assert X.shape == (40, d) and X.dtype == np.float32 and y.sum() == 5


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        datasets.load_dataset("mnist")


def test_corrupt_file_reports_path_and_both_hashes(fake_data):
    path = fake_data / "odds" / "thyroid.mat"
    expected = fetch.REGISTRY["odds/thyroid.mat"].sha256
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(DataChecksumError) as exc:
        datasets.load_dataset("thyroid", fake_data)
    msg = str(exc.value)
    assert str(path) in msg and expected in msg and sha256sum(path) in msg


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


def test_missing_file_is_downloaded_from_a_local_server_and_verified(fake_data, http_server, tmp_path, monkeypatch):
    served, url = http_server
    (served / "kddcup99").mkdir()
    for rel in ("kddcup99/kddcup.data_10_percent.gz", "kddcup99/kddcup.names"):
        (served / rel).write_bytes((fake_data / rel).read_bytes())
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    target = tmp_path / "empty"
    target.mkdir()  # an existing, empty data folder: files are downloaded into it
    X, y = datasets.load_dataset("kddcup", target)
    assert X.shape == (20, 47)
    assert sha256sum(target / "kddcup99" / "kddcup.names") == fetch.REGISTRY["kddcup99/kddcup.names"].sha256


def test_corrupt_download_is_rejected_and_not_kept(fake_data, http_server, tmp_path, monkeypatch):
    served, url = http_server
    (served / "odds").mkdir()
    (served / "odds" / "thyroid.mat").write_bytes(b"not a mat file")
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    target = tmp_path / "empty2"
    target.mkdir()
    with pytest.raises(DataChecksumError, match="does not match"):
        fetch_file("odds/thyroid.mat", target)
    assert not (target / "odds" / "thyroid.mat").exists()
    assert not list((target / "odds").glob("*.part"))


def test_missing_file_without_network_names_url_and_folder(tmp_path, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: the download fails at once
    monkeypatch.setenv("DAGMM_MIRROR_URL", f"http://127.0.0.1:{port}")
    target = tmp_path / "nowhere"
    target.mkdir()  # the folder exists, the file does not
    with pytest.raises(DataFileMissingError) as exc:
        fetch_file("kddcup99/kddcup.data_10_percent.gz", target)
    msg = str(exc.value)
    assert "http://kdd.ics.uci.edu/databases/kddcup99/kddcup.data_10_percent.gz" in msg
    assert str(target / "kddcup99") in msg and "DAGMM_DATA_DIR" in msg
    monkeypatch.delenv("DAGMM_MIRROR_URL")
    with pytest.raises(DataFileMissingError, match="odds.cs.stonybrook.edu/thyroid-dataset"):
        fetch_file("odds/thyroid.mat", target)


def test_real_files_match_the_paper_definitions(real_data_dir):
    X, y = datasets.load_dataset("kddcup", real_data_dir)
    assert X.shape == (494_021, 118) and y.sum() == 97_278
    cc = np.load(real_data_dir / "crosscheck" / "danieltan07_dagmm" / "kdd_cup.npz")["kdd"]
    np.testing.assert_array_equal(cc[:, -1], y)  # third-party labels agree row by row
    X, y = datasets.load_dataset("kddcup_rev", real_data_dir, random_state=3)
    assert X.shape == (121_597, 118) and y.sum() == 24_319
    X, y = datasets.load_dataset("thyroid", real_data_dir)
    assert X.shape == (3772, 6) and y.sum() == 93
    X, y = datasets.load_dataset("arrhythmia", real_data_dir)
    assert X.shape == (452, 274) and y.sum() == 66


def test_shipped_reference_copy_equals_shared(real_data_dir):
    shared = paths.ROOT.parent / "shared" / "reference" / paths.REFERENCE_RESULTS_NAME
    if not shared.exists():
        pytest.skip("no ../shared/reference beside the checkout")
    assert (paths.DATA / "reference" / paths.REFERENCE_RESULTS_NAME).read_bytes() == shared.read_bytes()


# ----------------------------------------------------------------------------------------------
# a data directory that does not exist is named as such and never created


def _serve_all(fake_data: Path, served: Path) -> None:
    """Put every fake data file on the local mirror, so a download would succeed."""
    for rel in fetch.REGISTRY:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        (served / rel).write_bytes((fake_data / rel).read_bytes())


def test_missing_data_dir_argument_is_named_and_not_created(fake_data, http_server, tmp_path, monkeypatch):
    served, url = http_server
    _serve_all(fake_data, served)
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)  # every file could be downloaded: none may be
    missing = tmp_path / "typo" / "datasets"
    expected = (f"data directory {missing} does not exist (from the data_dir argument); "
                "pass the folder that holds the data files, see data/README.md")
    calls = [
        lambda: fetch_file("odds/thyroid.mat", missing),
        lambda: fetch_file("kddcup99/kddcup.names", missing),
        lambda: datasets.load_dataset("thyroid", missing),
        lambda: datasets.load_dataset("kddcup", missing),
        lambda: datasets.load_base("kddcup_rev", missing),
        lambda: datasets.kddcup_feature_names(missing),
    ]
    for call in calls:
        with pytest.raises(DataFileMissingError) as exc:  # old handlers still catch it
            call()
        assert str(exc.value) == expected
        assert not (tmp_path / "typo").exists()
        assert type(exc.value).__name__ == "DataDirMissingError"


def test_missing_data_dir_from_the_environment_is_named_and_not_created(fake_data, http_server, tmp_path, monkeypatch):
    served, url = http_server
    _serve_all(fake_data, served)
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    missing = tmp_path / "x" / "y"
    monkeypatch.setenv("DAGMM_DATA_DIR", str(missing))
    with pytest.raises(DataFileMissingError) as exc:
        datasets.load_dataset("thyroid")
    assert str(exc.value) == (f"data directory {missing} does not exist (from DAGMM_DATA_DIR); "
                              "set it to the folder that holds the data files, see data/README.md")
    # a relative value is shown as given, with the folder it was resolved against
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGMM_DATA_DIR", "rel/data")
    with pytest.raises(DataFileMissingError) as exc:
        fetch_file("odds/arrhythmia.mat")
    msg = str(exc.value)
    assert f"data directory {tmp_path / 'rel' / 'data'} does not exist" in msg
    assert f"(from DAGMM_DATA_DIR = 'rel/data', relative to the working directory {tmp_path})" in msg
    assert not missing.parent.exists() and not (tmp_path / "rel").exists()


def test_data_dir_that_is_a_file_is_named(fake_data, tmp_path):
    not_a_dir = tmp_path / "datasets.txt"
    not_a_dir.write_text("oops")
    with pytest.raises(DataFileMissingError, match=r"datasets.txt is not a folder \(from the data_dir argument\)"):
        datasets.load_dataset("thyroid", not_a_dir)
    assert not_a_dir.read_text() == "oops"


def test_default_data_raw_is_still_created_by_a_download(fake_data, http_server, tmp_path, monkeypatch):
    """``data/raw/`` is the project's own download folder: absent, it is created as before."""
    served, url = http_server
    _serve_all(fake_data, served)
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    monkeypatch.delenv("DAGMM_DATA_DIR", raising=False)
    raw = tmp_path / "repo" / "data" / "raw"
    monkeypatch.setattr(paths, "DATA_RAW", raw)
    assert resolve_data_dir() == raw and not raw.exists()
    assert fetch_file("odds/thyroid.mat") == raw / "odds" / "thyroid.mat"
    assert sha256sum(raw / "odds" / "thyroid.mat") == fetch.REGISTRY["odds/thyroid.mat"].sha256


# ----------------------------------------------------------------------------------------------
# ADBench classical tabular sets (issue 28): pinned checksums, download from ADBench's repository

# name: (rows, features, anomalies, anomaly % as ../shared/datasets/README.md documents it)
ADBENCH_DOCUMENTED = {
    "ALOI": (49_534, 27, 1_508, 3.0),
    "annthyroid": (7_200, 6, 534, 7.4),
    "breastw": (683, 9, 239, 35.0),
    "campaign": (41_188, 62, 4_640, 11.3),
    "Cardiotocography": (2_114, 21, 466, 22.0),
    "fault": (1_941, 27, 673, 34.7),
    "Hepatitis": (80, 19, 13, 16.3),
    "InternetAds": (1_966, 1_555, 368, 18.7),
    "landsat": (6_435, 36, 1_333, 20.7),
    "magic.gamma": (19_020, 10, 6_688, 35.2),
    "mammography": (11_183, 6, 260, 2.3),
    "PageBlocks": (5_393, 10, 510, 9.5),
    "SpamBase": (4_207, 57, 1_679, 39.9),
    "Stamps": (340, 9, 31, 9.1),
    "Waveform": (3_443, 21, 100, 2.9),
    "Wilt": (4_819, 5, 257, 5.3),
    "wine": (129, 13, 10, 7.8),
    "WPBC": (198, 33, 47, 23.7),
    "yeast": (1_484, 8, 507, 34.2),
}
ADBENCH_RAW = "https://github.com/Minqi824/ADBench/raw/3dac8221081e190f157d78e93bfa8867f90d0965/adbench/datasets/Classical/"


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: a download fails at once
    return f"http://127.0.0.1:{port}"


def test_adbench_names_files_checksums_and_urls_agree():
    assert list(datasets.ADBENCH) == list(ADBENCH_DOCUMENTED)  # the 19 sets, ADBench's order and spelling
    pinned = fetch.read_checksums("adbench")
    assert sorted(pinned) == sorted(f"adbench/{f}" for f in datasets.ADBENCH.values())
    assert fetch.ADBENCH_COMMIT == "3dac8221081e190f157d78e93bfa8867f90d0965"
    for rel, digest in pinned.items():
        entry = fetch.REGISTRY[rel]
        assert entry.sha256 == digest and len(digest) == 64
        assert entry.url == ADBENCH_RAW + rel.split("/", 1)[1]
        assert fetch.ADBENCH_COMMIT in entry.page
    assert fetch.REGISTRY["adbench/22_magic.gamma.npz"].sha256 == (
        "0be375984d7af9ea7a63b12206c240840d8b7daa3607021c5fb8756407dd86f1")


def test_adbench_checksum_file_ships_with_the_package():
    import fnmatch
    import tomllib
    from importlib import resources

    conf = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    globs = conf["tool"]["setuptools"]["package-data"]["dagmm"]
    assert any(fnmatch.fnmatch("checksums/adbench.sha256", g) for g in globs)
    assert resources.files("dagmm").joinpath("checksums", "adbench.sha256").is_file()


def test_adbench_checksums_equal_the_shared_sha256sums(real_data_dir):
    sums = real_data_dir / "SHA256SUMS"
    if not sums.exists():
        pytest.skip(f"no SHA256SUMS in {real_data_dir}")
    shared = {}
    for line in sums.read_text().splitlines():
        if " adbench/" in line:
            digest, rel = line.split()
            shared[rel] = digest
    assert shared == fetch.read_checksums("adbench")


@pytest.mark.parametrize("name", list(ADBENCH_DOCUMENTED))
def test_real_adbench_sets_have_the_documented_shape_and_anomaly_fraction(real_data_dir, name):
    if not (real_data_dir / "adbench").is_dir():
        pytest.skip(f"no adbench/ in {real_data_dir}")
    rows, n_features, anomalies, percent = ADBENCH_DOCUMENTED[name]
    X, y = datasets.load_adbench(name, real_data_dir)
    assert X.shape == (rows, n_features) and X.dtype == np.float32
    assert y.shape == (rows,) and y.dtype == np.int64 and set(np.unique(y).tolist()) == {0, 1}
    assert int(y.sum()) == anomalies
    assert abs(100 * y.mean() - percent) <= 0.05 + 1e-9
    assert np.isfinite(X).all()  # no set holds NaN or inf (the loader would refuse it)


def test_adbench_names_are_case_insensitive_and_arrays_are_fresh(fake_data):
    X, y = datasets.load_adbench("ALOI", fake_data)
    assert X.dtype == np.float32 and y.dtype == np.int64 and X.shape == (20, 2) and y.sum() == 4
    for spelling in ("aloi", "Aloi", "aLoI"):
        X2, y2 = datasets.load_adbench(spelling, fake_data)
        np.testing.assert_array_equal(X2, X)
        np.testing.assert_array_equal(y2, y)
    assert datasets.adbench_name("MAGIC.GAMMA") == "magic.gamma" and datasets.adbench_name("pageblocks") == "PageBlocks"
    X[:] = 7  # the caller owns the arrays: a later load is unaffected
    assert not (datasets.load_adbench("ALOI", fake_data)[0] == 7).any()
    raw = np.load(fake_data / "adbench" / "45_wine.npz")
    X, y = datasets.load_adbench("WINE", fake_data)
    np.testing.assert_array_equal(X, raw["X"].astype(np.float32))
    np.testing.assert_array_equal(y, raw["y"])


def test_unknown_adbench_name_is_refused_with_the_known_ones():
    for bad in ("mnist", "thyroid", "1_ALOI", None):
        with pytest.raises(ValueError, match=f"Unknown ADBench dataset {bad!r}") as exc:
            datasets.load_adbench(bad)
        assert all(repr(n) in str(exc.value) for n in datasets.ADBENCH)


def test_missing_adbench_file_is_downloaded_from_a_local_mirror_and_verified(fake_data, http_server, tmp_path, monkeypatch):
    served, url = http_server
    rel = "adbench/15_Hepatitis.npz"
    (served / "adbench").mkdir()
    (served / rel).write_bytes((fake_data / rel).read_bytes())
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    target = tmp_path / "empty"
    target.mkdir()
    X, y = datasets.load_adbench("hepatitis", target)
    assert sha256sum(target / rel) == fetch.REGISTRY[rel].sha256
    assert not list((target / "adbench").glob("*.part"))
    X0, y0 = datasets.load_adbench("Hepatitis", fake_data)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_real_adbench_file_is_downloaded_and_checked_against_the_shipped_checksum(real_data_dir, http_server, tmp_path, monkeypatch):
    if not (real_data_dir / "adbench").is_dir():
        pytest.skip(f"no adbench/ in {real_data_dir}")
    served, url = http_server
    rel = "adbench/45_wine.npz"
    (served / "adbench").mkdir()
    (served / rel).write_bytes((real_data_dir / rel).read_bytes())
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    target = tmp_path / "fresh"
    target.mkdir()
    X, y = datasets.load_adbench("wine", target)  # the registry is not re-pinned here
    assert X.shape == (129, 13) and y.sum() == 10
    assert sha256sum(target / rel) == fetch.read_checksums("adbench")[rel]


def test_corrupt_adbench_download_is_rejected_and_not_kept(http_server, tmp_path, monkeypatch):
    served, url = http_server
    (served / "adbench").mkdir()
    (served / "adbench" / "37_Stamps.npz").write_bytes(b"not an npz")
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)
    target = tmp_path / "empty"
    target.mkdir()
    with pytest.raises(DataChecksumError, match="does not match"):
        datasets.load_adbench("Stamps", target)
    assert not (target / "adbench" / "37_Stamps.npz").exists()
    assert not list((target / "adbench").glob("*.part"))


def test_corrupt_adbench_file_reports_path_and_both_hashes(tmp_path):
    path = tmp_path / "adbench" / "45_wine.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the wine set")
    expected = "d5ad8965d92cc57122fe1e6572bb301adbaf795b3e166d187ae00a704d8f6e20"  # the shipped pin
    with pytest.raises(DataChecksumError) as exc:
        datasets.load_adbench("wine", tmp_path)
    msg = str(exc.value)
    assert str(path) in msg and expected in msg and sha256sum(path) in msg
    assert path.read_bytes() == b"not the wine set"  # reported, not replaced


def test_missing_adbench_file_without_network_names_the_pinned_url_and_folder(tmp_path, monkeypatch):
    mirror = _closed_port_url()
    monkeypatch.setenv("DAGMM_MIRROR_URL", mirror)
    target = tmp_path / "nowhere"
    target.mkdir()
    with pytest.raises(DataFileMissingError) as exc:
        datasets.load_adbench("Hepatitis", target)
    msg = str(exc.value)
    assert f"Missing data file {target / 'adbench' / '15_Hepatitis.npz'}" in msg
    assert f"downloading {mirror}/adbench/15_Hepatitis.npz failed" in msg
    assert f"Download it from {ADBENCH_RAW}15_Hepatitis.npz" in msg
    assert f"(folder {target / 'adbench'})" in msg and "DAGMM_DATA_DIR" in msg
    assert not (target / "adbench" / "15_Hepatitis.npz").exists()


def test_missing_data_dir_is_named_and_not_created_for_adbench(fake_data, http_server, tmp_path, monkeypatch):
    served, url = http_server
    _serve_all(fake_data, served)
    monkeypatch.setenv("DAGMM_MIRROR_URL", url)  # the file could be downloaded: it may not be
    missing = tmp_path / "typo" / "datasets"
    with pytest.raises(fetch.DataDirMissingError) as exc:
        datasets.load_adbench("yeast", missing)
    assert str(exc.value) == (f"data directory {missing} does not exist (from the data_dir argument); "
                              "pass the folder that holds the data files, see data/README.md")
    assert not (tmp_path / "typo").exists()


def test_adbench_rows_with_nan_or_inf_are_reported_not_dropped(fake_data, monkeypatch):
    rel = "adbench/37_Stamps.npz"
    X = np.ones((12, 3))
    X[4, 1], X[9, 0], X[2, 2] = np.nan, -np.inf, 1e300  # 1e300 overflows float32
    np.savez(fake_data / rel, X=X, y=np.zeros(12, np.int32))
    monkeypatch.setitem(fetch.REGISTRY, rel, DataFile(rel, sha256sum(fake_data / rel), None, "page"))
    with pytest.raises(ValueError, match=r"37_Stamps.npz: 3 of 12 rows of X hold NaN or inf .*rows \[2, 4, 9\]"):
        datasets.load_adbench("Stamps", fake_data)


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.ones((4, 2)), "y": np.array([0, 1, 2, 0])}, "y must be 0 .normal. or 1 .anomaly., found values \\[0, 1, 2\\]"),
    ({"X": np.ones((4, 2)), "y": np.zeros(3)}, "expected X of shape \\(n, d\\) and y of shape \\(n,\\)"),
    ({"X": np.ones(4), "y": np.zeros(4)}, "expected X of shape"),
    ({"data": np.ones((4, 2))}, "no array X or y"),
])
def test_adbench_file_of_the_wrong_form_is_refused(fake_data, monkeypatch, arrays, message):
    rel = "adbench/47_yeast.npz"
    np.savez(fake_data / rel, **arrays)
    monkeypatch.setitem(fetch.REGISTRY, rel, DataFile(rel, sha256sum(fake_data / rel), None, "page"))
    with pytest.raises(ValueError, match=message):
        datasets.load_adbench("yeast", fake_data)
