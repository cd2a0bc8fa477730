"""Tables and figures of the reports: published numbers, formatting for readers, atomic writes.

In a notebook, :func:`show_table` displays a table whole and formatted for
reading, :func:`save_figure` saves a figure and shows it inline, and
:func:`save_finding` writes the notebook's main finding for the landing page.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from . import paths
from .files import atomic_path
from .protocol import METRICS

__all__ = ["load_published", "with_paper", "pipe_table", "save_table", "save_figure", "git_commit",
           "merge_runs", "provenance", "table_html", "show_table", "show_saved_figure", "save_finding", "read_findings"]


def load_published(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The published numbers we compare against (``published_results.csv``)."""
    return pd.read_csv(path or paths.published_results_path())


def with_paper(table: pd.DataFrame, published: pd.DataFrame, source: str = "zong2018_iclr") -> pd.DataFrame:
    """Add ``paper_precision, paper_recall, paper_f1`` from ``source``'s rows.

    Rows are matched on (dataset, method); methods the paper does not report
    (e.g. our controls) get empty cells.
    """
    pub = published[published["source"] == source][["dataset", "method", "precision", "recall", "f1"]]
    pub = pub.rename(columns={c: f"paper_{c}" for c in ("precision", "recall", "f1")})
    return table.merge(pub, on=["dataset", "method"], how="left")


def pipe_table(df: pd.DataFrame) -> list[str]:
    """The lines of a Markdown pipe table of ``df`` (values as ``str``, missing ones empty)."""
    cells = lambda r: "| " + " | ".join("" if pd.isna(v) else str(v) for v in r) + " |"  # noqa: E731
    return [cells(df.columns), "|" + "---|" * len(df.columns), *(cells(r) for r in df.itertuples(index=False))]


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        write(str(tmp))
    return path


def save_table(df: pd.DataFrame, path: str | os.PathLike, float_format: str = "%.6g") -> Path:
    """Write a CSV atomically (an interrupted run never leaves half a table)."""
    return _atomic(Path(path), lambda tmp: df.to_csv(tmp, index=False, float_format=float_format))


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebooks' kernel
        return False
    return get_ipython() is not None


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, show: bool = True) -> None:
    """Save a matplotlib figure atomically (format from the suffix), show it inline, close it.

    In a notebook the saved file itself is displayed, so the report shows
    exactly the figure under ``reports/figures/``. Outside IPython nothing is
    shown. The figure is closed either way.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:]))
    plt.close(fig)
    if show and _in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(path)))


SAVED_NOTE = ("This figure needs the trained models' outputs, so it is shown as saved by the execution that trained "
              "them (its commit and device are on the index page); this report was re-rendered from the per-run "
              "tables without retraining.")


def show_saved_figure(path: str | os.PathLike, note: str = SAVED_NOTE) -> bool:
    """Show a figure saved earlier (e.g. by the execution that trained the models,
    when this one only re-renders the reports), with ``note`` under it.

    Returns whether the file exists; when it does not, a line saying so is shown.
    """
    from IPython.display import Image, Markdown, display

    path = Path(path)
    if not path.exists():
        display(Markdown(f"*Figure `{path.name}` is not available: run this notebook with training to draw it.*"))
        return False
    display(Image(filename=str(path)))
    if note:
        display(Markdown(f"*{note}*"))
    return True


def _is_p_value(column: str) -> bool:
    c = column.lower()
    return c == "p" or c.startswith(("p_", "p ", "p,", "pvalue", "p-value")) or "_p_" in c


def _cell(v, digits: int, p_value: bool) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu"):
        return str(int(v))
    if isinstance(v, float) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") == "f"):
        v = float(v)
        if p_value:
            return f"{v:.2g}"
        return str(int(v)) if v.is_integer() and abs(v) >= 1000 else f"{v:.{digits}f}"
    if isinstance(v, str) and v.lower() == "nan":
        return ""
    return str(v)


REFERENCE_COLUMNS = {"paper_f1": "paper", "seeds_f1": "seeds", "reported_f1": "reported"}
REFERENCE_WORDS = tuple(REFERENCE_COLUMNS.values())


def readable(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A copy of ``table`` with every cell a string formatted for reading.

    * each ``X_mean`` / ``X_std`` pair becomes one column ``X`` reading ``mean ± std``;
    * beside ``f1`` (mean), a column ``Δ F1 vs paper`` (``vs seeds``, ``vs reported``) for each
      of ``paper_f1``, ``seeds_f1``, ``reported_f1`` the table holds: ours minus that number;
    * floats with ``digits`` decimals, p-values (columns named ``p``, ``p_...``, ``..._p_...``)
      with 2 significant digits, integers as integers, booleans as yes/no;
    * missing values are blank, and columns with no value at all are dropped.
    """
    t = table.reset_index() if not isinstance(table.index, pd.RangeIndex) else table.copy()
    paired = {c for c in t.columns if str(c).endswith("_std") and f"{str(c)[:-4]}_mean" in t.columns}
    t = t.loc[:, [c for c in t.columns if c in paired or t[c].notna().any()]]
    cols, out = list(t.columns), {}
    means = {str(c)[:-5] for c in cols if str(c).endswith("_mean") and f"{str(c)[:-5]}_std" in cols}
    for c in cols:
        name = str(c)  # pivoted tables have numbers as column labels
        if name.endswith("_std") and name[:-4] in means:
            continue
        if name.endswith("_mean") and name[:-5] in means:
            m = name[:-5]
            out[m] = [_cell(mu, digits, False) + ("" if pd.isna(sd) else f" ± {sd:.{digits}f}")
                      for mu, sd in zip(t[c], t[f"{m}_std"])]
            if m == "f1":
                for ref, word in REFERENCE_COLUMNS.items():
                    if ref in cols:
                        out[f"Δ F1 vs {word}"] = [_cell(d, digits, False) if pd.isna(d) else f"{d:+.{digits}f}"
                                                   for d in (t[c] - pd.to_numeric(t[ref], errors="coerce"))]
            continue
        if name.startswith(("diff", "Δ")):
            out[name] = ["" if pd.isna(v) else f"{float(v):+.{digits}f}" for v in t[c]]
        elif name.startswith(tuple(f"{w}_" for w in REFERENCE_WORDS)):  # published numbers keep their 4 decimals
            out[name] = [_cell(v, 4, False) for v in t[c]]
        else:
            out[name] = [_cell(v, digits, _is_p_value(name)) for v in t[c]]
    return pd.DataFrame(out)


TABLE_CSS = """<style>
.dagmm-table{max-height:36em;overflow:auto;margin:.5em 0 1em 0;border:1px solid #ddd}
.dagmm-table table{border-collapse:collapse;font-size:13px}
.dagmm-table th,.dagmm-table td{white-space:nowrap;padding:.25em .7em;text-align:right;border-bottom:1px solid #eee}
.dagmm-table th{position:sticky;top:0;background:#f7f7f7;z-index:1}
.dagmm-table td:first-child,.dagmm-table th:first-child{text-align:left}
</style>"""


def table_html(table: pd.DataFrame, digits: int = 3, caption: str = "") -> str:
    """``table`` as one HTML table, whole (never cut), formatted by :func:`readable`, in a
    box that scrolls when the table is taller or wider than the page."""
    import html as _html

    body = readable(table, digits).to_html(index=False, escape=True, na_rep="", border=0)
    cap = f"<p><em>{_html.escape(caption)}</em></p>" if caption else ""
    return f'{TABLE_CSS}{cap}<div class="dagmm-table">{body}</div>'


def show_table(table: pd.DataFrame, digits: int = 3, caption: str = "") -> None:
    """Display ``table`` in a notebook whole and formatted for reading (see :func:`readable`)."""
    from IPython.display import HTML, display

    display(HTML(table_html(table, digits, caption)))


def save_finding(text: str, out: str | os.PathLike, notebook: str) -> None:
    """Write a notebook's main finding (Markdown built from its own numbers) to
    ``<out>/findings/<notebook>.md`` for the landing page, and show it.

    Parameters
    ----------
    text : str, one paragraph of Markdown
    out : the reports folder the notebook writes into
    notebook : str, the notebook's file stem, e.g. ``"01_replication"``
    """
    path = Path(out) / "findings" / f"{notebook}.md"
    _atomic(path, lambda tmp: Path(tmp).write_text(text.strip() + "\n", encoding="utf-8"))
    if _in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(f"**Main finding.** {text}"))


def read_findings(out: str | os.PathLike) -> dict[str, str]:
    """The findings under ``<out>/findings/``, by notebook stem."""
    folder = Path(out) / "findings"
    return {f.stem: f.read_text(encoding="utf-8").strip() for f in sorted(folder.glob("*.md"))} if folder.is_dir() else {}


README_START = "<!-- results:start"  # the marker line goes on to name the table it was generated from
README_END = "<!-- results:end -->"


def headline_markdown(table: pd.DataFrame, published: pd.DataFrame) -> str:
    """Markdown table: ours (mean ± std) beside the paper's P/R/F1."""
    t = with_paper(table, published)
    rows = []
    for _, r in t.iterrows():
        paper = "" if pd.isna(r.paper_f1) else f"{r.paper_precision:.4f} / {r.paper_recall:.4f} / {r.paper_f1:.4f}"
        rows.append([r.dataset, r.method, f"{int(r.n_runs)} ({int(r.n_failed)})",
                     *(f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}" for m in METRICS), paper])
    columns = ["dataset", "method", "runs (failed)", "precision", "recall", "F1", "AUROC", "AUPRC", "paper P / R / F1"]
    return "\n".join(pipe_table(pd.DataFrame(rows, columns=columns)))


def summary_markdown(summary: pd.DataFrame) -> str:
    """Markdown table of ``summary.csv`` (notebook 07): every method beside DAGMM, with the paired verdicts."""

    def versus(r, m):
        if pd.isna(r.get(f"diff_{m}_vs_dagmm")):
            return ""
        p = r.get(f"p_holm_{m}_vs_dagmm")
        p = "" if pd.isna(p) else f", p={p:.2g}"
        return f"{r[f'diff_{m}_vs_dagmm']:+.3f} ({r[f'verdict_{m}']}{p})"

    rows = []
    for _, r in summary.iterrows():
        rep = ""
        if pd.notna(r.get("reported_f1")):
            src = {"zong2018_iclr": "paper"}.get(r.reported_source, "seeds")
            setting = f", {r.reported_setting}" if pd.notna(r.get("reported_setting")) else ""
            rep = f"{r.reported_f1:.4f} ({src}{setting})"
        rows.append([r.dataset, r.method, f"{int(r.n_runs)} ({int(r.n_failed)})",
                     *(f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}" for m in ("f1", "auroc", "auprc")),
                     versus(r, "f1"), versus(r, "auroc"), rep])
    columns = ["dataset", "method", "runs (failed)", "F1", "AUROC", "AUPRC", "F1 vs DAGMM", "AUROC vs DAGMM", "reported F1"]
    return "\n".join(pipe_table(pd.DataFrame(rows, columns=columns)))


def update_readme(readme: str | os.PathLike, table_csv: str | os.PathLike, published: pd.DataFrame | None = None) -> bool:
    """Replace the README's generated results block; returns whether it changed.

    ``table_csv`` is ``summary.csv`` (notebook 07's columns) or a table with
    the columns of ``table2_dagmm.csv``.
    """
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text or not Path(table_csv).exists():
        return False
    table = pd.read_csv(table_csv)
    if "verdict_f1" in table.columns:
        from .summary import scaling_sentence

        block = summary_markdown(table)
        scaling = scaling_sentence(table)
        if scaling:
            block += "\n\n" + scaling
    else:
        block = headline_markdown(table, load_published() if published is None else published)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    marker = f"{README_START} (generated by python -m dagmm.runner from reports/tables/{Path(table_csv).name}; do not edit) -->"
    new = f"{head}{marker}\n{block}\n{README_END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def git_commit() -> str:
    """The commit the code runs at: ``$DAGMM_COMMIT`` when set (a copy of the tree
    without .git, e.g. on a remote GPU machine), else ``git rev-parse HEAD`` with
    ``+dirty`` when ``lib/`` or ``notebooks/`` have uncommitted changes, else ``"unknown"``."""
    import subprocess

    if os.environ.get("DAGMM_COMMIT"):
        return os.environ["DAGMM_COMMIT"]
    try:
        run = dict(cwd=paths.ROOT, capture_output=True, text=True)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], check=True, **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib", "notebooks"], **run).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def merge_runs(new: pd.DataFrame, path: str | os.PathLike, keep_other: bool = True,
               keys: tuple[str, ...] = ("dataset", "method")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run rows of this execution, plus, with ``keep_other``, the rows of every
    group of ``keys`` (by default each (dataset, method)) it did not run, from the
    per-run table already at ``path``.

    This lets a notebook run one dataset, or some methods, at a time (on
    different machines, or in calls shorter than the whole) and still write one
    table. ``new`` must carry ``keys`` and the provenance columns ``commit`` and
    ``device``; kept rows keep theirs, and rows without them are never kept.

    Parameters
    ----------
    new : DataFrame, the per-run rows of this execution
    path : the per-run table written earlier (absent: nothing is kept)
    keep_other : bool, default True
    keys : tuple of str, default ("dataset", "method")
        The columns that name one unit of work: a group of ``keys`` present in
        ``new`` replaces that whole group in the old table (e.g. add ``"c"``
        for Table 3, where each contamination level can run on its own; add
        ``"run"`` when this execution ran only some of the runs, so that it
        replaces those runs and keeps the others).

    Returns
    -------
    merged : DataFrame, the kept rows first, then ``new``
    kept : DataFrame, one row per kept group of ``keys`` other than ``"run"``,
        with its runs' ``commit``, ``device`` and number of rows (empty when
        nothing was kept)
    """
    keys = list(keys)
    missing = {*keys, "commit", "device"} - set(new.columns)
    if missing:
        raise ValueError(f"new runs lack the columns {sorted(missing)}")
    path = Path(path)
    kept = new.iloc[:0]
    if keep_other and path.exists():
        old = pd.read_csv(path)
        if {*keys, "commit", "device"} <= set(old.columns):
            done = pd.MultiIndex.from_frame(new[keys].drop_duplicates())
            kept = old[~pd.MultiIndex.from_frame(old[keys]).isin(done)]
        elif len(old):
            warnings.warn(f"{path} lacks the columns {sorted({*keys, 'commit', 'device'} - set(old.columns))} "
                          f"(it predates them), so none of its {len(old)} rows are kept: rerun what they came from",
                          stacklevel=2)
    merged = pd.concat([kept, new], ignore_index=True)
    return merged, provenance(kept, keys=[k for k in keys if k != "run"] or keys)


def save_progress(new: pd.DataFrame, path: str | os.PathLike, commit: str, device: str,
                  keys: tuple[str, ...] = ("dataset", "method")) -> pd.DataFrame:
    """Stamp ``new`` per-run rows with ``commit`` and ``device``, merge them into the
    per-run table at ``path`` (each group of ``keys`` in ``new`` replaces the same
    group there; every other group is kept) and write it back atomically.

    Meant as the ``on_result`` callback of a long execution, so that each
    method's runs are on disk as soon as they are done and a crash later loses
    none of them.

    Parameters
    ----------
    new : DataFrame, shape (n_rows, n_columns), carrying ``keys``
    path : the per-run table (created when absent)
    commit, device : str, the provenance of ``new``
    keys : tuple of str, default ("dataset", "method"), see :func:`merge_runs`

    Returns
    -------
    merged : DataFrame, the table as written
    """
    merged, _ = merge_runs(new.assign(commit=commit, device=device), path, keep_other=True, keys=keys)
    save_table(merged, path)
    return merged


def lacking(table: pd.DataFrame, grid, keys: tuple[str, ...], n_runs: int) -> list[tuple]:
    """The cells of ``grid`` that ``table`` lacks, or has with fewer than ``n_runs`` runs.

    Parameters
    ----------
    table : DataFrame, one row per cell, with the columns ``keys`` and ``n_runs``
    grid : iterable of tuples, the cells the study needs, each the values of ``keys``
    keys : tuple of str, the columns that name a cell, e.g. ("dataset", "method")
    n_runs : int, the runs each cell needs

    Returns
    -------
    list of tuple, the lacking cells in the order of ``grid``. Float keys
    (contamination levels) are compared rounded to 6 decimals.
    """
    norm = lambda cell: tuple(round(v, 6) if isinstance(v, float) else v for v in cell)  # noqa: E731
    have = {norm(cell): n for cell, n in zip(table[list(keys)].itertuples(index=False, name=None), table["n_runs"])}
    return [cell for cell in grid if have.get(norm(cell), 0) < n_runs]


def distinct(values) -> str:
    """The distinct values, sorted and joined by ", " (a missing one reads "not recorded"): e.g. the
    devices of a (dataset, method) whose runs ran in several executions."""
    return ", ".join(sorted({"not recorded" if pd.isna(x) else str(x) for x in values}))


def provenance(runs: pd.DataFrame, columns=("commit", "device"), keys=("dataset", "method")) -> pd.DataFrame:
    """One row per group of ``keys`` (by default each (dataset, method)) of per-run
    ``runs``: its number of ``rows`` and, for each of ``columns`` present, the
    distinct values joined by ", " (a missing value reads "not recorded").
    Empty when ``runs`` is."""
    keys = list(keys)
    cols = [c for c in columns if c in runs]
    if not len(runs):
        return pd.DataFrame(columns=[*keys, "rows", *cols])
    return (runs.groupby(keys, sort=False)
            .agg(rows=(keys[0], "size"), **{c: (c, distinct) for c in cols}).reset_index())
