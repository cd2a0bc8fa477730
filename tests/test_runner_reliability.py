"""Nothing lost to an interrupt or a failure: the runner publishes a notebook's reports only when it
finishes, says truthfully what failed where, and refuses parameters no notebook has."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from dagmm import paths, runner

PARAMS = 'profile = "smoke"\nreports_dir = ""\nreuse_runs = False\n'


def _runner(*args: str) -> subprocess.Popen:
    """``python -m dagmm.runner ...`` in a session of its own, with Ctrl-C's default action (a shell that
    starts jobs in the background, as CI may, makes them ignore SIGINT, and Python keeps ignoring it)."""
    return subprocess.Popen([sys.executable, "-m", "dagmm.runner", *args], cwd=paths.ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params, *map(nbformat.v4.new_code_cell, cells)]
    nbformat.write(nb, path)
    return path


WRITE_THEN_SLEEP = ("from pathlib import Path\nimport time\nout = Path(reports_dir)\n"
                    "(out / 'tables').mkdir(parents=True, exist_ok=True)\n"
                    "(out / 'tables' / 't.csv').write_text('new\\n')\n"
                    "(out / 'figures').mkdir(parents=True, exist_ok=True)\n"
                    "(out / 'figures' / 'f.png').write_bytes(b'new')\n"
                    "Path(reports_dir, 'wrote').write_text('')  # tells the test the tables are written\n"
                    "time.sleep(60)")


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _committed(tmp_path: Path) -> Path:
    """A reports folder holding an earlier, finished execution of nb.ipynb."""
    out = tmp_path / "reports"
    for rel, text in {"tables/t.csv": "old\n", "figures/f.png": "old", "executed/nb.ipynb": "{}",
                      "html/nb.html": "<html></html>", "index.html": "<html>index</html>"}.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    (out / "run_log.json").write_text(json.dumps({"profile": "smoke", "notebooks": [dict(
        notebook=str(tmp_path / "nb.ipynb"), status="ok", where="", wall_s=1.0, commit="old", device="cpu",
        executed="executed/nb.ipynb", html="html/nb.html")]}, indent=2))
    return out


@pytest.mark.parametrize("when", ["while the kernel starts", "after the notebook wrote its tables"])
def test_an_interrupt_leaves_every_committed_file_as_it_was(tmp_path, when):
    nb = _notebook(tmp_path / "nb.ipynb", WRITE_THEN_SLEEP)
    out = _committed(tmp_path)
    before = _snapshot(out)
    proc = _runner("--profile", "smoke", "--out", str(out), "--notebooks", str(nb))
    deadline = time.time() + 120
    if when == "while the kernel starts":  # the stage exists from just before papermill starts the kernel
        while time.time() < deadline and not list(out.glob(".staging-*")):
            time.sleep(0.05)
        assert list(out.glob(".staging-*")), "the runner never started the notebook"
    else:  # the stage is a hidden folder inside out: wait until the notebook wrote into it
        while time.time() < deadline and not list(out.glob(".staging-*/wrote")):
            time.sleep(0.2)
        assert list(out.glob(".staging-*/wrote")), "the notebook never ran"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the runner and its kernel alike
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _snapshot(out) == before  # byte-identical: tables, figures, executed copy, HTML, log, index
    assert not list(out.glob(".staging-*"))


def test_failures_of_earlier_invocations_do_not_change_the_exit_status(tmp_path, capsys):
    ok = _notebook(tmp_path / "05_ok.ipynb", "x = 1")
    out = tmp_path / "reports"
    out.mkdir()
    (out / "run_log.json").write_text(json.dumps({"profile": "smoke", "notebooks": [dict(
        notebook="notebooks/06_other.ipynb", status="failed", where="cell 3: boom", wall_s=1, commit="c",
        device="cpu", executed="executed/06_other.ipynb", html="html/06_other.html")]}))
    assert runner.main(["--profile", "smoke", "--out", str(out), "--notebooks", str(ok)]) == 0
    assert "FAILED" not in capsys.readouterr().err
    statuses = {Path(r["notebook"]).stem: r["status"] for r in runner.log_records(out / "run_log.json")[1]}
    assert statuses == {"05_ok": "ok", "06_other": "failed"}  # the log still says what each report is


def test_a_failure_names_the_cell_as_the_user_numbers_it(tmp_path, capsys):
    bad = _notebook(tmp_path / "05_bad.ipynb", "x = 1", "raise ValueError('no such dataset')")
    out = tmp_path / "reports"
    assert runner.main(["--profile", "smoke", "--out", str(out), "--notebooks", str(bad)]) == 1
    err = capsys.readouterr().err
    # cells: 1 title, 2 parameters, 3 "x = 1", 4 the raise; papermill's injected cell is not counted
    assert "FAILED: " in err and "05_bad" in err and "cell 4" in err and "ValueError: no such dataset" in err
    assert (out / "executed" / "05_bad.ipynb").exists() and (out / "html" / "05_bad.html").exists()  # kept to read


def test_a_dead_kernel_is_reported_with_the_cell_it_was_running(tmp_path):
    dies = _notebook(tmp_path / "05_dies.ipynb", "x = 1", "import os\nos._exit(1)", "y = 2")
    out = tmp_path / "reports"
    (out / "tables").mkdir(parents=True)
    rec = runner.run_notebook(dies, out, {"profile": "smoke"})
    assert rec["status"] == "failed"
    assert "kernel died" in rec["where"] and "cell 4" in rec["where"], rec["where"]


def test_unknown_parameters_are_refused_before_anything_runs(tmp_path, capsys):
    nb = _notebook(tmp_path / "05_nb.ipynb", "x = 1")
    other = _notebook(tmp_path / "07_sum.ipynb", "y = 1")
    out = tmp_path / "reports"
    with pytest.raises(SystemExit) as exc:
        runner.main(["--profile", "smoke", "--out", str(out), "--notebooks", str(nb), "-p", "datasetz=kddcup"])
    assert exc.value.code == 2 and "'datasetz'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        runner.main(["--profile", "smoke", "--out", str(out), "--notebooks", str(nb), "-p", "05:reuse_run=true"])
    assert "05_nb.ipynb has no parameter 'reuse_run'" in capsys.readouterr().err
    assert not out.exists()  # nothing ran, nothing was created
    # a common key goes to the notebooks that declare it only (07 has no profile-independent x)
    assert runner.unknown_parameters({nb: {"x", "profile"}, other: {"profile"}}, {"x"}, []) == []


def test_an_interrupt_under_jobs_keeps_nothing_of_the_notebooks_still_running(tmp_path):
    nbs = [_notebook(tmp_path / f"0{i}_nb.ipynb", WRITE_THEN_SLEEP) for i in (4, 5)]
    out = _committed(tmp_path)
    before = _snapshot(out)
    proc = _runner("--profile", "smoke", "--out", str(out), "--jobs", "2", "--notebooks", *map(str, nbs))
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob(".staging-*/wrote"))) < 2:
        time.sleep(0.2)
    assert len(list(out.glob(".staging-*/wrote"))) == 2, "the notebooks never ran side by side"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert _snapshot(out) == before
    assert not list(out.glob(".staging-*"))
