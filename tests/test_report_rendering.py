"""What a reader of the reports sees: whole, readable tables; inline figures; pages with titles, links and no
machine paths; a landing page with the findings and the provenance of every report; interactive runs that
never write over the committed reports."""
import json
import re

import nbformat
import numpy as np
import pandas as pd
import pytest

from dagmm import paths, reporting, runner


def test_a_notebook_run_by_hand_writes_to_scratch_and_the_runner_names_the_committed_folder(tmp_path):
    scratch = paths.reports_folder("full", "")
    assert scratch == paths.SCRATCH / "full"
    assert paths.REPORTS not in (scratch, scratch.parent)  # never the committed folder
    assert paths.reports_folder("smoke", str(tmp_path)) == tmp_path.resolve()
    assert "reports/scratch/" in (paths.ROOT / ".gitignore").read_text()


def test_shown_paths_never_name_the_machine(tmp_path):
    assert paths.shown(paths.TABLES / "x.csv") == "reports/tables/x.csv"
    outside = paths.shown(tmp_path / "deep" / "data")
    assert str(tmp_path) not in outside and outside == "…/data"


def _table(n=60):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "dataset": [f"d{i}" for i in range(n)], "method": "DAGMM", "n_runs": 20, "n_failed": 0,
        "f1_mean": rng.uniform(0.5, 0.9, n), "f1_std": rng.uniform(0, 0.1, n),
        "auroc_mean": rng.uniform(0.5, 0.9, n), "auroc_std": np.nan,
        "paper_f1": [0.9369] + [np.nan] * (n - 1), "p_holm_f1_vs_dagmm": 0.000123456, "empty": np.nan})


def test_readable_tables_join_mean_and_std_blank_nan_and_add_the_difference_from_the_paper():
    t = _table()
    r = reporting.readable(t)
    assert len(r) == len(t)  # whole
    assert "empty" not in r.columns  # a column with no value at all is dropped
    assert "f1_mean" not in r.columns and "f1_std" not in r.columns
    assert r.f1[0] == f"{t.f1_mean[0]:.3f} ± {t.f1_std[0]:.3f}"
    assert r.auroc[0] == f"{t.auroc_mean[0]:.3f}"  # no std: no "± nan"
    assert r["Δ F1 vs paper"][0] == f"{t.f1_mean[0] - 0.9369:+.3f}" and r["Δ F1 vs paper"][1] == ""
    assert r.paper_f1[0] == "0.9369" and r.paper_f1[1] == ""  # published numbers keep their decimals
    assert r.p_holm_f1_vs_dagmm[0] == "0.00012"
    assert r.n_runs[0] == "20"
    assert not r.apply(lambda c: c.str.contains("nan", case=False)).any().any()


def test_html_tables_are_whole_do_not_wrap_and_scroll_inside_the_page():
    t = _table(150)
    page = reporting.table_html(t)
    assert page.count("<tr") == 151  # header + every row: never cut with "..."
    assert "..." not in page and "rows ×" not in page
    assert "white-space:nowrap" in page and "overflow:auto" in page


def _executed_notebook(path, printed):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 05 · A real title\n\nProse."),
                nbformat.v4.new_code_cell("secret_source_line = 1\nprint('x')")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nbformat.write(nb, path)


def test_report_pages_hide_code_have_a_title_links_and_no_machine_paths(tmp_path):
    executed = tmp_path / "05_laplacian.ipynb"
    _executed_notebook(executed, f"reports={paths.ROOT}/reports/tables/a.csv  tmp=/tmp/pytest-of-x/run3/out.csv  "
                                 "home=/home/someone/data/kdd.gz  root=/root/.cache/thing.npy\n")
    html_path = tmp_path / "html" / "05_laplacian.html"
    runner.to_html(executed, html_path, csvs=["tables/variants_laplacian.csv"])
    page = html_path.read_text()
    assert "<title>05 · A real title</title>" in page
    assert "secret_source_line" not in page  # code hidden; the executed .ipynb keeps it
    assert 'href="../index.html"' in page and 'href="../tables/variants_laplacian.csv"' in page
    order = runner.report_order()
    i = order.index("05_laplacian")
    assert f'href="{order[i - 1]}.html"' in page and f'href="{order[i + 1]}.html"' in page
    assert "reports/tables/a.csv" in page and "out.csv" in page and "kdd.gz" in page  # file names stay
    assert not runner.MACHINE_PATH.search(page), runner.MACHINE_PATH.search(page).group(0)
    assert str(paths.ROOT) not in page


def test_a_render_record_keeps_the_provenance_of_the_execution_that_trained(tmp_path):
    log = tmp_path / "run_log.json"
    trained = dict(notebook="notebooks/01_replication.ipynb", status="ok", commit="gpu-commit", device="cuda: H100",
                   wall_s=500.0, finished="2026-11-22 20:32:37 UTC", parameters={"profile": "full"})
    log.write_text(json.dumps({"profile": "full", "notebooks": [trained]}))
    render = dict(notebook="notebooks/01_replication.ipynb", status="ok", commit="new", device="cpu", wall_s=6.0,
                  finished="later", rendered=True)
    merged = runner.merge_records(log, [render], "full")
    assert merged[0]["trained"]["commit"] == "gpu-commit" and merged[0]["trained"]["wall_s"] == 500.0
    log.write_text(json.dumps({"profile": "full", "notebooks": merged}))
    again = runner.merge_records(log, [dict(render, commit="newer")], "full")  # a second render keeps the original
    assert runner.trained_by(again[0])["device"] == "cuda: H100"
    retrained = runner.merge_records(log, [dict(trained, commit="fresh")], "full")
    assert runner.trained_by(retrained[0])["commit"] == "fresh"


def test_the_index_shows_the_headline_table_findings_and_provenance(tmp_path):
    out = tmp_path / "reports"
    (out / "tables").mkdir(parents=True)
    (out / "html").mkdir()
    row = {f"{m}_{s}": 0.5 for m in ("precision", "recall", "f1", "auroc", "auprc") for s in ("mean", "std")}
    pd.DataFrame([dict(dataset="thyroid", method="DAGMM", n_runs=20, n_failed=0, reported_f1=0.4782, **row),
                  dict(dataset="thyroid", method="OC-SVM", n_runs=20, n_failed=0, diff_f1_vs_dagmm=0.1,
                       verdict_f1="better", diff_auroc_vs_dagmm=0.0, verdict_auroc="no significant difference",
                       **row)]).to_csv(out / "tables" / "summary.csv", index=False)
    reporting.save_finding("DAGMM is within 0.02 of the paper on **3 of 4** datasets.", out, "01_replication")
    (out / "html" / "01_replication.html").write_text("<html></html>")
    log = dict(profile="full", versions={"torch": "2"}, notebooks=[
        dict(notebook="notebooks/01_replication.ipynb", status="ok", html="html/01_replication.html",
             commit="aaa", device="cuda: H100", wall_s=600, finished="d1"),
        dict(notebook="notebooks/07_summary.ipynb", status="ok", html="html/07_summary.html", rendered=True,
             commit="ccc", device="cpu", wall_s=5, finished="d3",
             trained=dict(commit="bbb", device="cpu", wall_s=1200, finished="d2"))])
    page = runner.write_index(out, log).read_text()
    assert "<title>" in page and "Notebook</title>" not in page
    assert "OC-SVM" in page and "0.500 ± 0.500" in page and "better" in page  # the headline table
    assert "<strong>thyroid</strong>" in page and "better than DAGMM: OC-SVM" in page  # verdicts
    assert "<strong>3 of 4</strong>" in page and 'href="html/01_replication.html"' in page  # a finding, linked
    assert "2 different commits" in page  # aaa and bbb trained what is shown; ccc only rendered
    assert "<code>bbb</code>" in page and "<code>ccc</code>" in page
    assert "30 min" not in page and "20 min" in page  # 07's wall time is its training's, not the render's
    assert not runner.MACHINE_PATH.search(page)


@pytest.mark.notebook
def test_save_figure_shows_the_saved_file_inline_and_show_table_renders_html(tmp_path):
    import papermill as pm

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nimport pandas as pd\nfrom dagmm import reporting\n"
        f"fig, ax = plt.subplots()\nax.plot([0, 1])\nreporting.save_figure(fig, {str(tmp_path / 'f.png')!r})\n"
        "reporting.show_table(pd.DataFrame({'a': range(100)}))")]
    src, done = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(done), progress_bar=False, kernel_name="python3")
    outputs = nbformat.read(done, as_version=4).cells[0].outputs
    kinds = [k for o in outputs for k in o.get("data", {})]
    assert "image/png" in kinds and "text/html" in kinds
    assert (tmp_path / "f.png").exists()
    assert not [o for o in outputs if o.get("output_type") == "execute_result"]  # no stray PosixPath(...)
    html = next(o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {}))
    assert len(re.findall("<tr", html)) == 101
