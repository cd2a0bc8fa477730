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
