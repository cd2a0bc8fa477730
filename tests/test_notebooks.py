"""Every numbered notebook runs end to end under papermill with the smoke profile."""
import json

import pytest

from dagmm import paths

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))


@pytest.fixture(scope="module")
def shared_reports(tmp_path_factory):
    """One reports folder for all notebooks, as run_all.sh has: 07_summary reads what 01-06 wrote."""
    return tmp_path_factory.mktemp("smoke") / "reports"


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_under_smoke_profile(nb, shared_reports, tmp_path, real_data_dir):
    import papermill as pm

    out = shared_reports
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*") if p.is_file()} if out.exists() else {}
    params = dict(profile="smoke", reports_dir=str(out))
    if "data_dir" in nb.read_text():  # every notebook but the summary, which only reads tables
        params.update(data_dir=str(real_data_dir), device="cpu")
    pm.execute_notebook(str(nb), str(tmp_path / nb.name), cwd=str(nb.parent), progress_bar=False, parameters=params)
    written = [p for p in out.glob("*/*") if p.is_file() and before.get(p) != p.stat().st_mtime_ns]
    assert any(p.suffix == ".csv" for p in written) and any(p.suffix == ".png" for p in written), nb.name
    _assert_readable_outputs(tmp_path / nb.name)


def _assert_readable_outputs(executed):
    """What a reader of the report sees: figures inline, no stray reprs of paths."""
    cells = json.loads(executed.read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{executed.name} shows no figure"
    shown = "".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", "")) for o in outputs)
    assert "PosixPath(" not in shown, f"{executed.name} prints a path object"


@pytest.mark.notebook
def test_render_pass_rebuilds_every_report_from_the_runs_tables(shared_reports, tmp_path, real_data_dir):
    """After the smoke executions above (same folder), a render pass (reuse_runs, what ``--render`` sets)
    runs every notebook again without training: same aggregate tables to float rounding, a finding each."""
    import pandas as pd
    import papermill as pm

    out = shared_reports
    if not (out / "tables" / "table2_dagmm_runs.csv").exists():
        pytest.skip("needs the smoke executions of this module first")
    before = {f.name: pd.read_csv(f) for f in (out / "tables").glob("*.csv") if not f.name.endswith("_runs.csv")}
    for nb in NOTEBOOKS:
        params = dict(profile="smoke", reports_dir=str(out), reuse_runs=True)
        if "data_dir" in nb.read_text():
            params.update(data_dir=str(real_data_dir), device="cpu")
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), cwd=str(nb.parent), progress_bar=False, parameters=params)
        _assert_readable_outputs(tmp_path / nb.name)
    for name, old in before.items():
        new = pd.read_csv(out / "tables" / name)
        assert list(new.columns) == list(old.columns) and len(new) == len(old), name
        num = old.select_dtypes("number").columns
        pd.testing.assert_frame_equal(new[num], old[num], check_exact=False, rtol=1e-4, atol=1e-6, obj=name)
    assert sorted(f.stem for f in (out / "findings").glob("*.md")) == [nb.stem for nb in NOTEBOOKS]


def test_notebooks_are_committed_without_outputs_and_with_a_parameters_cell():
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# "), nb
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), nb
        for c in cells:
            if c["cell_type"] == "code":
                assert not c["outputs"] and c["execution_count"] is None, f"{nb.name} has outputs"


def test_runner_reports_a_failing_notebook_and_keeps_its_copy(tmp_path, capsys):
    import nbformat

    from dagmm import runner

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("profile = 'full'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "99_fails.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "earlier.csv").write_text("a\n1\n")
    code = runner.main(["--profile", "smoke", "--out", str(out), "--notebooks", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "99_fails.ipynb" in err and "ValueError: boom" in err and "In [" in err
    assert (out / "executed" / "99_fails.ipynb").exists() and (out / "html" / "99_fails.html").exists()
    assert (out / "tables" / "earlier.csv").read_text() == "a\n1\n"
    log = json.loads((out / "run_log.json").read_text())
    assert log["notebooks"][0]["status"] == "failed" and (out / "index.html").exists()


def _timing_notebook(path, body, reads=""):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("profile = 'full'\nreports_dir = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(f"# reads {reads}\nimport os, time, json\nt0 = time.time()\n{body}\n"
                                  f"open({str(path) + '.json'!r}, 'w').write(json.dumps([t0, time.time(), "
                                  "os.environ.get('OMP_NUM_THREADS')]))"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_runner_jobs_runs_notebooks_side_by_side_in_dependency_order(tmp_path, monkeypatch):
    import os

    from dagmm import runner

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    first = _timing_notebook(tmp_path / "01_first.ipynb", "time.sleep(4)")
    reader = _timing_notebook(tmp_path / "04_reader.ipynb", "pass", reads="table2_dagmm.csv")
    free = _timing_notebook(tmp_path / "02_free.ipynb", "time.sleep(1)")
    summary = _timing_notebook(tmp_path / "07_summary.ipynb", "pass")
    nbs = [first, free, reader, summary]
    assert runner.dependencies(nbs) == {first: set(), free: set(), reader: {first}, summary: {first, free, reader}}
    code = runner.main(["--profile", "smoke", "--out", str(tmp_path / "out"), "--jobs", "2", "--notebooks", *map(str, nbs)])
    assert code == 0
    t = {p.stem: json.loads(open(str(p) + ".json").read()) for p in nbs}
    assert t["02_free"][0] < t["01_first"][1]  # ran beside notebook 01
    assert t["04_reader"][0] >= t["01_first"][1]  # waited for the table it reads
    assert t["07_summary"][0] >= max(v[1] for k, v in t.items() if k != "07_summary")
    assert t["01_first"][2] == str(max(1, (os.cpu_count() or 1) // 2))  # threads split between the kernels
    assert "OMP_NUM_THREADS" not in os.environ  # and the runner's own environment restored
    log = json.loads((tmp_path / "out" / "run_log.json").read_text())
    assert sorted(r["notebook"] for r in log["notebooks"]) == sorted(map(str, nbs))
    assert all(r["jobs"] == 2 for r in log["notebooks"])


def test_runner_dependencies_never_wait_in_a_circle_and_missing_notebooks_are_named(tmp_path, capsys):
    from dagmm import runner

    a, b = _timing_notebook(tmp_path / "07_summary.ipynb", "pass"), _timing_notebook(tmp_path / "07b_more.ipynb", "pass")
    c = _timing_notebook(tmp_path / "03_x.ipynb", "pass", reads="table2_dagmm.csv")  # no 01 in the run: no wait
    assert runner.dependencies([a, b, c]) == {a: {c}, b: {c}, c: set()}
    with pytest.raises(SystemExit):
        runner.main(["--profile", "smoke", "--out", str(tmp_path / "o"), "--jobs", "2",
                     "--notebooks", str(a), str(tmp_path / "04_missing.ipynb")])
    err = capsys.readouterr().err
    assert "not found" in err and "04_missing.ipynb" in err


def test_runner_parameters_scoped_to_one_notebook(tmp_path, capsys):
    # -p NB:KEY=VALUE reaches only the notebooks whose name starts with NB; -p KEY=VALUE every one
    import nbformat

    from dagmm import runner

    nbs = []
    for name in ("01b_x", "01c_y"):
        nb = nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_code_cell("profile = 'full'\nmethods = 'all'\nworkers = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(f"import json\nopen({str(tmp_path / name) + '.json'!r}, 'w').write(json.dumps([methods, workers]))"),
        ])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        nbs.append(str(tmp_path / f"{name}.ipynb"))
    code = runner.main(["--profile", "smoke", "--out", str(tmp_path / "out"), "--notebooks", *nbs,
                        "-p", "workers=4", "-p", "01c:methods=DAGMM,DCN", "-p", "01b_x:workers=2"])
    assert code == 0
    got = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("01b_x", "01c_y")}
    assert got == {"01b_x": ["all", 2], "01c_y": ["DAGMM,DCN", 4]}  # the scoped value wins over the common one
    for bad, msg in ((["-p", "02:methods=x"], "no notebook"), (["-p", "methods"], "KEY=VALUE")):
        with pytest.raises(SystemExit):
            runner.main(["--profile", "smoke", "--out", str(tmp_path / "o2"), "--notebooks", *nbs, *bad])
        assert msg in capsys.readouterr().err


def test_one_at_a_time_a_notebook_runs_after_the_one_whose_table_it_reads():
    from dagmm import runner

    order = [nb.name[:3] for nb in runner.in_dependency_order(NOTEBOOKS)]
    assert order[0] == "01_" and order[-1] == "07_"
    for reader in ("04_", "05_", "06b"):  # they draw DAGMM's sweep from notebook 06's table
        assert order.index("06_") < order.index(reader)
