"""The runner's bookkeeping: importing reports from another machine, the README's headline block."""
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from dagmm import runner
from dagmm.reporting import README_END, README_START, update_readme


def _log(notebooks, profile="full", commit="abc", device="cuda: X"):
    return dict(profile=profile, commit=commit, device=device, versions={"torch": "2"}, finished="now", wall_s=1.0,
                notebooks=[dict(notebook=n, status="ok", where="", wall_s=1.0, executed=f"executed/{n}",
                                html=f"html/{n}.html") for n in notebooks])


def test_import_copies_reports_and_merges_the_run_log(tmp_path):
    src, out = tmp_path / "remote", tmp_path / "reports"
    (src / "tables").mkdir(parents=True)
    (src / "tables" / "variants_x.csv").write_text("a\n1\n")
    (src / "tables" / "table2_dagmm.csv").write_text("same\n")  # a copy the remote run only read
    (src / "executed").mkdir()
    (src / "executed" / "04.ipynb").write_text("{}")
    (src / "run_log.json").write_text(json.dumps(_log(["notebooks/04.ipynb"], commit="remote", device="cuda: H100")))
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "table2_dagmm.csv").write_text("same\n")
    (out / "tables" / "keep.csv").write_text("b\n2\n")
    (out / "run_log.json").write_text(json.dumps(_log(["notebooks/01.ipynb", "notebooks/04.ipynb"], device="cpu")))

    runner.main(["--import", str(src), "--out", str(out)])

    assert (out / "tables" / "variants_x.csv").read_text() == "a\n1\n"
    assert (out / "tables" / "keep.csv").exists()  # nothing already there is lost
    assert (out / "executed" / "04.ipynb").exists()
    log = json.loads((out / "run_log.json").read_text())
    by_name = {r["notebook"]: r for r in log["notebooks"]}
    assert sorted(by_name) == ["notebooks/01.ipynb", "notebooks/04.ipynb"]
    assert by_name["notebooks/04.ipynb"]["device"] == "cuda: H100"  # the imported entry replaces the old one
    assert by_name["notebooks/04.ipynb"]["commit"] == "remote"
    assert by_name["notebooks/01.ipynb"]["device"] == "cpu"
    assert "variants_x.csv" in (out / "index.html").read_text()


def test_import_refuses_a_folder_without_a_run_log_and_a_profile_mismatch(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_log.json"):
        runner.import_reports(tmp_path, tmp_path / "out")
    src, out = tmp_path / "a", tmp_path / "b"
    src.mkdir(), out.mkdir()
    (src / "run_log.json").write_text(json.dumps(_log(["n.ipynb"], profile="smoke")))
    (out / "run_log.json").write_text(json.dumps(_log(["m.ipynb"], profile="full")))
    with pytest.raises(ValueError, match="smoke"):
        runner.import_reports(src, out)


def test_readme_block_from_the_summary_names_verdicts_and_its_source(tmp_path):
    row = dict(dataset="thyroid", n_runs=20, n_failed=1, **{f"{m}_{s}": 0.5 for m in ("precision", "recall", "f1", "auroc", "auprc") for s in ("mean", "std")})
    summary = pd.DataFrame([
        {**row, "method": "DAGMM", "reported_source": "zong2018_iclr", "reported_f1": 0.4782},
        {**row, "method": "DAGMM-VAE", "diff_f1_vs_dagmm": -0.06, "p_holm_f1_vs_dagmm": 0.01, "verdict_f1": "worse",
         "diff_auroc_vs_dagmm": 0.0, "p_holm_auroc_vs_dagmm": 1.0, "verdict_auroc": "no significant difference"},
    ])
    csv = tmp_path / "summary.csv"
    summary.to_csv(csv, index=False)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START} (old) -->\nold table\n{README_END}\noutro\n")
    assert update_readme(readme, csv)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "from reports/tables/summary.csv" in text
    assert "| thyroid | DAGMM-VAE | 20 (1) |" in text and "-0.060 (worse, p=0.01)" in text
    assert "0.4782 (paper)" in text
    assert not update_readme(readme, csv)  # unchanged the second time


def test_pipe_table_leaves_missing_values_empty():
    from dagmm.reporting import pipe_table

    lines = pipe_table(pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]}))
    assert lines == ["| a | b |", "|---|---|", "| 1.5 | x |", "|  | y |"]


def test_merge_runs_keeps_other_datasets_with_their_provenance(tmp_path):
    import pandas as pd

    from dagmm.reporting import merge_runs

    path = tmp_path / "runs.csv"
    old = pd.DataFrame(dict(dataset=["thyroid", "thyroid", "kddcup"], method="DAGMM", run=[0, 1, 0], f1=[0.5, 0.6, 0.9],
                            commit=["aaa", "aaa", "bbb"], device=["cpu", "cpu", "cuda: H100"]))
    old.to_csv(path, index=False)
    new = pd.DataFrame(dict(dataset=["kddcup", "kddcup"], method="DAGMM", run=[0, 1], f1=[0.95, 0.93], commit="ccc", device="cpu"))
    merged, kept = merge_runs(new, path)
    assert sorted(map(tuple, merged[["dataset", "run", "commit"]].values.tolist())) == [
        ("kddcup", 0, "ccc"), ("kddcup", 1, "ccc"), ("thyroid", 0, "aaa"), ("thyroid", 1, "aaa")]  # old kddcup replaced
    assert kept.to_dict("records") == [dict(dataset="thyroid", method="DAGMM", rows=2, commit="aaa", device="cpu")]
    other = new.assign(method="OC-SVM")  # another method on kddcup: every DAGMM row stays
    assert set(merge_runs(other, path)[0].query("method == 'DAGMM'").commit) == {"aaa", "bbb"}
    assert merge_runs(new, path, keep_other=False)[0].equals(new)
    assert len(merge_runs(new, tmp_path / "absent.csv")[1]) == 0
    old.drop(columns=["commit", "device"]).to_csv(path, index=False)  # rows without provenance are never kept
    with pytest.warns(UserWarning, match=r"lacks the columns \['commit', 'device'\]"):
        assert merge_runs(new, path)[0].equals(new)
    with pytest.raises(ValueError, match="commit"):
        merge_runs(new.drop(columns="commit"), path)


def test_merge_runs_by_contamination_level_keeps_the_other_levels(tmp_path):
    # Table 3: each (dataset, method, c) is one unit of work; rerunning one level of a method keeps the others
    import pandas as pd

    from dagmm.reporting import merge_runs

    path = tmp_path / "runs.csv"
    old = pd.DataFrame(dict(dataset="kddcup", method=["OC-SVM"] * 4 + ["DAGMM"] * 2, c=[0.01, 0.01, 0.02, 0.02, 0.01, 0.02],
                            run=[0, 1, 0, 1, 0, 0], f1=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], commit="aaa", device="cpu"))
    old.to_csv(path, index=False)
    new = pd.DataFrame(dict(dataset="kddcup", method="OC-SVM", c=0.02, run=[0, 1], f1=[0.65, 0.66], commit="bbb", device="gpu"))
    merged, kept = merge_runs(new, path, keys=("dataset", "method", "c"))
    got = merged.set_index(["method", "c", "run"]).sort_index()
    assert len(merged) == 6
    assert got.loc[("OC-SVM", 0.02), "commit"].tolist() == ["bbb", "bbb"]  # the level rerun is replaced
    assert got.loc[("OC-SVM", 0.01), "f1"].tolist() == [0.9, 0.8]  # the other level of that method is kept
    assert kept[["method", "c", "rows"]].values.tolist() == [["OC-SVM", 0.01, 2], ["DAGMM", 0.01, 1], ["DAGMM", 0.02, 1]]
    # keyed by (dataset, method) alone, the same rerun would have dropped OC-SVM's other level
    assert len(merge_runs(new, path)[0].query("method == 'OC-SVM'")) == 2
    with pytest.raises(ValueError, match=r"\['c'\]"):
        merge_runs(new.drop(columns="c"), path, keys=("dataset", "method", "c"))
    old.drop(columns="c").to_csv(path, index=False)  # a table without levels cannot say which level its rows were
    with pytest.warns(UserWarning, match=r"lacks the columns \['c'\]"):
        assert merge_runs(new, path, keys=("dataset", "method", "c"))[0].equals(new)


def test_merge_runs_by_run_adds_the_other_half_of_the_runs(tmp_path):
    # a study split over two executions (runs 0-1, then 2-3): the second keeps the first's runs of the same
    # (dataset, method), replaces only the runs it ran, and its provenance names each (dataset, method) once
    import pandas as pd

    from dagmm.reporting import merge_runs

    path = tmp_path / "runs.csv"
    first = pd.DataFrame(dict(dataset="kddcup", method="DAGMM", run=[0, 1, 2], f1=[0.9, 0.8, 0.1], commit="aaa", device="cpu"))
    first.to_csv(path, index=False)
    second = pd.DataFrame(dict(dataset="kddcup", method="DAGMM", run=[2, 3], f1=[0.7, 0.6], commit="bbb", device="gpu"))
    merged, kept = merge_runs(second, path, keys=("dataset", "method", "run"))
    got = merged.set_index("run").sort_index()
    assert got.f1.tolist() == [0.9, 0.8, 0.7, 0.6]  # run 2 rerun: replaced, not duplicated
    assert got.commit.tolist() == ["aaa", "aaa", "bbb", "bbb"]
    assert kept.to_dict("records") == [dict(dataset="kddcup", method="DAGMM", rows=2, commit="aaa", device="cpu")]
    # without the run key the same execution replaces the whole (dataset, method), as a full rerun should
    assert merge_runs(second, path)[0].run.tolist() == [2, 3]


def test_save_progress_writes_each_batch_so_a_later_crash_loses_nothing(tmp_path):
    # the on_result callback of 01b and 01c: every batch is stamped and on disk before the next one starts
    from dagmm.reporting import save_progress

    path = tmp_path / "runs.csv"
    pd.DataFrame(dict(dataset="thyroid", method="DAGMM", run=[0], f1=[0.5], commit="old", device="cpu")).to_csv(path, index=False)
    keys = ("dataset", "method")
    save_progress(pd.DataFrame(dict(dataset="kddcup", method="DSEBM-e", run=[0, 1], f1=[0.8, 0.7])), path, "c1", "cpu", keys)
    save_progress(pd.DataFrame(dict(dataset="kddcup", method="DCN", run=[0, 1], f1=[0.6, 0.9])), path, "c1", "cpu", keys)
    on_disk = pd.read_csv(path)
    assert sorted(zip(on_disk.method, on_disk.commit)) == [("DAGMM", "old"), ("DCN", "c1"), ("DCN", "c1"),
                                                          ("DSEBM-e", "c1"), ("DSEBM-e", "c1")]
    # a rerun of one batch replaces that batch only
    save_progress(pd.DataFrame(dict(dataset="kddcup", method="DCN", run=[0], f1=[0.1])), path, "c2", "gpu", keys)
    on_disk = pd.read_csv(path)
    assert on_disk.query("method == 'DCN'")[["f1", "commit", "device"]].values.tolist() == [[0.1, "c2", "gpu"]]
    assert len(on_disk) == 4


def test_lacking_names_missing_and_short_cells_in_grid_order():
    from dagmm.reporting import lacking

    table = pd.DataFrame(dict(method=["DAGMM", "DAGMM", "DCN"], c=[0.01, 0.1 + 0.2 - 0.28, 0.01], n_runs=[20, 20, 7]))
    grid = [(m, c) for m in ("DCN", "DAGMM") for c in (0.01, 0.02)]
    # 0.1 + 0.2 - 0.28 is 0.02 up to rounding; DCN at 1% has too few runs; DCN at 2% is absent
    assert lacking(table, grid, ("method", "c"), 20) == [("DCN", 0.01), ("DCN", 0.02)]
    assert lacking(table, grid, ("method", "c"), 5) == [("DCN", 0.02)]
    assert lacking(table.iloc[:0], grid, ("method", "c"), 1) == grid


def test_import_never_overwrites_a_later_execution_with_a_stale_copy(tmp_path):
    # src started from older reports: it reran 01b, but out has since rerun 01c, whose older copy src still holds
    src, out = tmp_path / "remote", tmp_path / "reports"
    for d, files in ((src, {"t2.csv": "new 01b", "t3.csv": "old 01c", "f3.png": "old fig"}),
                     (out, {"t2.csv": "old 01b", "t3.csv": "new 01c", "f3.png": "new fig"})):
        (d / "tables").mkdir(parents=True)
        for name, text in files.items():
            (d / "tables" / name).write_text(text)

    def rec(nb, finished, outputs):
        return dict(notebook=nb, status="ok", where="", wall_s=1.0, executed=f"executed/{nb}", html=f"html/{nb}.html",
                    commit="c", device="cpu", finished=finished, outputs=outputs)

    t3 = ["tables/t3.csv", "tables/f3.png"]
    (src / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[
        rec("01b", "2026-12-02 23:20:00 UTC", ["tables/t2.csv"]), rec("01c", "2026-12-02 18:00:00 UTC", t3)])))
    (out / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[
        rec("01b", "2026-12-02 17:00:00 UTC", ["tables/t2.csv"]), rec("01c", "2026-12-02 22:30:00 UTC", t3)])))
    got = runner.import_reports(src, out)
    assert [r["notebook"] for r in got] == ["01b"]
    assert (out / "tables" / "t2.csv").read_text() == "new 01b"
    assert (out / "tables" / "t3.csv").read_text() == "new 01c"  # the later execution's table is kept
    assert (out / "tables" / "f3.png").read_text() == "new fig"
    log = {r["notebook"]: r["finished"] for r in json.loads((out / "run_log.json").read_text())["notebooks"]}
    assert log == {"01b": "2026-12-02 23:20:00 UTC", "01c": "2026-12-02 22:30:00 UTC"}
    # records that do not list their outputs cannot tell a stale table: nothing is imported
    (out / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[
        {k: v for k, v in rec("01c", "2026-12-03 01:00:00 UTC", t3).items() if k != "outputs"}])))
    (src / "tables" / "t2.csv").write_text("newer 01b")
    with pytest.raises(ValueError, match="later execution"):
        runner.import_reports(src, out)
    assert (out / "tables" / "t2.csv").read_text() == "new 01b"


def test_import_never_drops_runs_that_only_the_destination_holds(tmp_path, capsys):
    # two executions from the same older reports each added runs (runs 0-1 here, runs 2-3 there): copying the
    # later one's runs table over ours would lose runs 0-1, so that notebook is not imported and says why
    import pandas as pd

    src, out = tmp_path / "remote", tmp_path / "reports"
    row = lambda run, commit: dict(dataset="kddcup", method="DAGMM", c=0.01, run=run, f1=0.9, commit=commit, device="cpu")  # noqa: E731
    for d, runs, commit in ((src, [2, 3], "bbb"), (out, [0, 1], "aaa")):
        (d / "tables").mkdir(parents=True)
        pd.DataFrame([row(r, commit) for r in runs]).to_csv(d / "tables" / "table3_contamination_runs.csv", index=False)
        (d / "tables" / "t3.csv").write_text(f"table of {commit}")

    def rec(finished):
        return dict(notebook="01c", status="ok", where="", wall_s=1.0, executed="executed/01c", html="html/01c.html",
                    commit="c", device="cpu", finished=finished, outputs=["tables/t3.csv", "tables/table3_contamination_runs.csv"])

    (src / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[rec("2026-12-03 11:00:00 UTC")])))
    (out / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[rec("2026-12-03 10:00:00 UTC")])))
    assert runner.import_reports(src, out) == []
    assert pd.read_csv(out / "tables" / "table3_contamination_runs.csv").run.tolist() == [0, 1]
    assert (out / "tables" / "t3.csv").read_text() == "table of aaa"
    assert "kddcup / DAGMM / 0.01: 2 runs" in capsys.readouterr().err
    # once src holds every run out has (it ran in a folder that held them), it is imported
    pd.DataFrame([row(r, "bbb") for r in range(4)]).to_csv(src / "tables" / "table3_contamination_runs.csv", index=False)
    assert [r["notebook"] for r in runner.import_reports(src, out)] == ["01c"]
    assert pd.read_csv(out / "tables" / "table3_contamination_runs.csv").run.tolist() == [0, 1, 2, 3]
    assert (out / "tables" / "t3.csv").read_text() == "table of bbb"
    # a notebook that replaces its runs table whole (not an accumulating one) may rightly drop earlier rows
    for d, runs in ((src, [2]), (out, [0, 1])):
        pd.DataFrame([row(r, "ccc") for r in runs]).to_csv(d / "tables" / "t4_runs.csv", index=False)
    records = json.loads((src / "run_log.json").read_text())
    records["notebooks"][0].update(finished="2026-12-03 12:00:00 UTC", outputs=["tables/t4_runs.csv"])
    (src / "run_log.json").write_text(json.dumps(records))
    assert [r["notebook"] for r in runner.import_reports(src, out)] == ["01c"]
    assert pd.read_csv(out / "tables" / "t4_runs.csv").run.tolist() == [2]


def test_import_only_some_notebooks_copies_just_their_files(tmp_path):
    # a worktree that ran 01c also holds an old 01b whose record predates "outputs": the whole folder cannot be
    # imported (see above), but 01c alone can, with the files its record lists and nothing else
    src, out = tmp_path / "remote", tmp_path / "reports"
    for d, tag in ((src, "src"), (out, "out")):
        (d / "tables").mkdir(parents=True)
        for name in ("t2.csv", "t3.csv"):
            (d / "tables" / name).write_text(f"{name} of {tag}")

    def rec(nb, finished, outputs=None):
        r = dict(notebook=f"notebooks/{nb}.ipynb", status="ok", where="", wall_s=1.0, executed=f"executed/{nb}.ipynb",
                 html=f"html/{nb}.html", commit="c", device="cpu", finished=finished)
        return r if outputs is None else {**r, "outputs": outputs}

    (src / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[
        rec("01b_x", "2026-12-02 23:00:00 UTC"), rec("01c_y", "2026-12-03 11:00:00 UTC", ["tables/t3.csv"])])))
    (out / "run_log.json").write_text(json.dumps(dict(_log([]), notebooks=[
        rec("01b_x", "2026-12-03 10:00:00 UTC", ["tables/t2.csv"]), rec("01c_y", "2026-12-02 09:00:00 UTC", ["tables/t3.csv"])])))
    with pytest.raises(ValueError, match="later execution"):
        runner.import_reports(src, out)
    got = runner.import_reports(src, out, only=["01c"])
    assert [r["notebook"] for r in got] == ["notebooks/01c_y.ipynb"]
    assert (out / "tables" / "t3.csv").read_text() == "t3.csv of src"
    assert (out / "tables" / "t2.csv").read_text() == "t2.csv of out"  # not listed by 01c: left alone
    log = {r["notebook"]: r["finished"] for r in json.loads((out / "run_log.json").read_text())["notebooks"]}
    assert log == {"notebooks/01b_x.ipynb": "2026-12-03 10:00:00 UTC", "notebooks/01c_y.ipynb": "2026-12-03 11:00:00 UTC"}
    with pytest.raises(ValueError, match="do not list"):
        runner.import_reports(src, out, only=["01b"])
    # while 01c executes again into src, its files there are half written: not imported until it ends
    marker = runner.running_marker(src, "01c_y.ipynb")
    marker.parent.mkdir()
    marker.write_text("{}")
    (src / "tables" / "t3.csv").write_text("half written")
    (src / "run_log.json").write_text((src / "run_log.json").read_text().replace("2026-12-03 11:00", "2026-12-03 11:30"))
    assert runner.import_reports(src, out, only=["01c"]) == []
    assert (out / "tables" / "t3.csv").read_text() == "t3.csv of src"
    marker.unlink()
    assert len(runner.import_reports(src, out, only=["01c"])) == 1
    assert (out / "tables" / "t3.csv").read_text() == "half written"
    with pytest.raises(ValueError, match="no notebook named"):
        runner.import_reports(src, out, only=["09"])


def test_run_notebook_lists_the_files_the_notebook_wrote(tmp_path, monkeypatch):
    import papermill

    out = tmp_path / "reports"
    (out / "tables").mkdir(parents=True)
    old = out / "tables" / "old.csv"
    old.write_text("x")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))  # written before the notebook ran

    def fake_execute(nb, executed, parameters, **kwargs):
        assert runner.running_marker(out, "x.ipynb").exists()  # an import meanwhile would leave x alone
        stage = Path(parameters["reports_dir"])  # the notebook writes into its stage, not into out
        assert stage != out and (stage / "tables" / "old.csv").read_text() == "x"  # but reads what out holds
        (stage / "tables" / "new.csv").write_text("y")
        (stage / "figures").mkdir()
        (stage / "figures" / "new.png").write_text("z")
        assert not (out / "tables" / "new.csv").exists()  # nothing reaches out before the end
        Path(executed).write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    rec = runner.run_notebook(tmp_path / "x.ipynb", out, {})
    assert rec["status"] == "ok", rec["where"]
    assert rec["outputs"] == ["figures/new.png", "tables/new.csv"]
    assert (out / "tables" / "new.csv").read_text() == "y" and (out / "figures" / "new.png").exists()
    assert (out / "executed" / "x.ipynb").exists() and (out / "html" / "x.html").exists()
    assert [r["notebook"] for r in runner.log_records(out / "run_log.json")[1]] == [rec["notebook"]]
    assert not runner.running_marker(out, "x.ipynb").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]  # the stage is gone


def test_log_records_give_each_record_its_commit_and_device_and_merge_keeps_the_profile(tmp_path):
    log = tmp_path / "run_log.json"
    assert runner.log_records(log) == (None, [])  # missing
    log.write_text("{not json")
    assert runner.log_records(log) == (None, [])  # unreadable
    log.write_text(json.dumps({"profile": "full", "commit": "c0", "device": "cpu", "notebooks": [
        {"notebook": "notebooks/01_replication.ipynb"},  # an old record: takes the log's commit and device
        {"notebook": "notebooks/01b_baselines.ipynb", "commit": "c1", "device": "cuda: H100"}]}))
    profile, recs = runner.log_records(log)
    assert profile == "full"
    assert [(r["commit"], r["device"]) for r in recs] == [("c0", "cpu"), ("c1", "cuda: H100")]
    new = [{"notebook": "notebooks/01b_baselines.ipynb", "commit": "c2", "device": "cpu"}]
    merged = runner.merge_records(log, new, "full")
    assert [(r["notebook"], r["commit"]) for r in merged] == [
        ("notebooks/01_replication.ipynb", "c0"), ("notebooks/01b_baselines.ipynb", "c2")]
    assert runner.merge_records(log, new, "smoke") == new  # another profile's records are not kept
