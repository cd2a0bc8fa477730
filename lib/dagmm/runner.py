"""Run every numbered notebook with papermill and publish the reports.

``python -m dagmm.runner --profile full`` (what ``run_all.sh`` calls):

* executes ``notebooks/NN_*.ipynb`` in order with the ``profile`` parameter;
* writes executed notebooks to ``<out>/executed/`` and HTML to ``<out>/html/``
  (``<out>`` is ``reports/`` for ``full`` and ``reports/smoke/`` for ``smoke``);
* records the git commit, package versions, device and wall time of each
  notebook in ``<out>/run_log.json`` and writes ``<out>/index.html`` linking
  every report, table and figure;
* a failing notebook keeps its executed copy and HTML, the others still run,
  and the exit status is 1 with a line naming the notebook and the cell.

``--render`` re-executes the notebooks without training (``reuse_runs=True``):
each rebuilds its tables, figures and report page from the per-run tables
already in the output folder, e.g. after a change of prose, formatting or a
figure, or to show a table assembled over several partial executions whole.

The notebooks always get ``reports_dir`` from the runner: run by hand (e.g.
Run All in JupyterLab) without it, they write under ``reports/scratch/``.

``--jobs N`` runs up to N notebooks at once (each in its own kernel). The
notebooks are small networks that leave a GPU mostly idle, so several share
it well. A notebook still waits for what it reads: those that read notebook
01's ``table2_dagmm.csv`` start after 01 (when 01 is in the run), the summary
(``07_*``) after all others. Each kernel gets ``cores // N`` BLAS/OpenMP threads
(unless ``OMP_NUM_THREADS`` is set), so the kernels do not oversubscribe the
CPU. Wall times of notebooks run side by side are longer than alone;
``run_log.json`` records ``jobs``.

``-p KEY=VALUE`` sets a papermill parameter of every notebook; ``-p NB:KEY=VALUE``
only of the notebooks whose file name starts with ``NB``, so one call can run
parts of several notebooks, e.g. ``--notebooks notebooks/01b_baselines.ipynb
notebooks/01c_contamination.ipynb --jobs 2 -p workers=4 -p 01b:datasets=kddcup
-p 01c:methods=DAGMM``.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import signal
import sys
import threading
import time
import weakref
from importlib import metadata
from pathlib import Path
from typing import Callable

from . import paths
from .reporting import git_commit
from .staging import STAGED_FOLDERS
from .engine.training import describe_device

__all__ = ["main", "run_notebook", "run_notebooks", "dependencies", "write_index"]

PACKAGES = ("dagmm", "torch", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "papermill", "nbconvert")


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def _source_cells(nb) -> list[tuple[int, object]]:
    """(number, cell) of the cells of the notebook a user opens, numbered from 1: the cells papermill
    inserts (injected parameters, error markers) are left out."""
    inserted = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nb.cells if not inserted & set(c.get("metadata", {}).get("tags", []))]
    return list(enumerate(cells, start=1))


def failure_where(executed: Path, exc: BaseException | None = None) -> str:
    """Where and why an execution failed: "cell N (In [k]): Error: message", N counted as in the
    notebook a user opens. A kernel that died is named as such, with the cell it was running
    (the last one papermill started)."""
    import nbformat

    unknown = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown cell"
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # noqa: BLE001 - papermill may have failed before writing it
        return unknown
    cells = _source_cells(nb)
    if exc is not None and ("DeadKernel" in type(exc).__name__ or "died" in str(exc).lower()):
        started = [(n, c) for n, c in cells if c.cell_type == "code" and c.metadata.get("papermill", {}).get("start_time")]
        at = f"cell {started[-1][0]} (In [{started[-1][1].get('execution_count') or ' '}])" if started else "an unknown cell"
        return f"the kernel died while running {at}: {type(exc).__name__}"
    for n, cell in cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                return f"cell {n} (In [{cell.get('execution_count')}]): {o.get('ename')}: {o.get('evalue')}"
    return unknown


def notebook_title(nb) -> str:
    """The text of a notebook's first Markdown heading (its name when it has none)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "DAGMM study report"


MACHINE_PATH = re.compile(r"(?<![\w.])(?:/(?:root|home|tmp|work|Users|private/var|var/folders|mnt|scratch)/|[A-Za-z]:\\\\)[^\s\"'<>]*")


def without_machine_paths(text: str) -> str:
    """``text`` with the folders of the machine that ran it taken out: paths inside the
    repository become relative to it, the data folder reads ``$DAGMM_DATA_DIR``, and any
    other absolute path under a home or temporary folder keeps only its file name."""
    from .datasets import resolve_data_dir

    subs = [(str(paths.ROOT) + "/", ""), (str(paths.ROOT), ".")]
    try:
        data = str(resolve_data_dir(None))
        subs.insert(0, (data, "$DAGMM_DATA_DIR"))
    except Exception:  # noqa: BLE001 - no data folder configured: nothing to hide
        pass
    for old, new in subs:
        text = text.replace(old, new)
    return MACHINE_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def report_order() -> list[str]:
    """The stems of the study's notebooks, in reading order (their file names')."""
    return [nb.stem for nb in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))]


NAV_CSS = ("<style>.dagmm-nav{font-family:sans-serif;font-size:14px;background:#f4f6f8;border-bottom:1px solid #ddd;"
           "padding:.5em 1em;margin-bottom:1em}.dagmm-nav a{margin-right:1.2em}.dagmm-nav .csv a{margin-right:.6em}</style>")


def nav_bar(stem: str, csvs=(), order: list[str] | None = None) -> str:
    """Links of a report page: the index, the previous and next reports, the CSV tables it wrote."""
    order = report_order() if order is None else order
    i = order.index(stem) if stem in order else -1
    links = ['<a href="../index.html">&#8962; all reports</a>']
    if i > 0:
        links.append(f'<a href="{html.escape(order[i - 1])}.html">&larr; {html.escape(order[i - 1])}</a>')
    if 0 <= i < len(order) - 1:
        links.append(f'<a href="{html.escape(order[i + 1])}.html">{html.escape(order[i + 1])} &rarr;</a>')
    tables = "".join(f'<a href="../{html.escape(c)}">{html.escape(Path(c).name)}</a>' for c in csvs)
    csv_line = f'<div class="csv">Tables it wrote: {tables}</div>' if tables else ""
    return f'{NAV_CSS}<nav class="dagmm-nav">{" ".join(links)}{csv_line}</nav>'


def to_html(executed: Path, html_path: Path, csvs=(), aliases: dict | None = None) -> None:
    """Export an executed notebook to a report page.

    The code is hidden (the executed ``.ipynb`` keeps it), streams are
    coalesced, the page is titled with the notebook's first heading, links
    to the index, the previous and next reports and the CSV tables it wrote
    (``csvs``, paths relative to the reports folder), and shows no folder of
    the machine that ran it (:func:`without_machine_paths`; ``aliases`` maps
    folders, such as the stage it ran in, to the folder they stand for).
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    nb = nbformat.read(executed, as_version=4)
    title = notebook_title(nb)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    order = report_order()
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav_bar(html_path.stem, csvs, order), body, count=1)
    body = body.replace("</body>", nav_bar(html_path.stem, (), order) + "</body>", 1)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = html_path.with_suffix(".html.tmp")
    for old, new in (aliases or {}).items():
        body = body.replace(old, new)
    tmp.write_text(without_machine_paths(body), encoding="utf-8")
    tmp.replace(html_path)


def running_marker(out: Path, notebook: str) -> Path:
    """The file that says ``notebook`` (a file name) is executing into ``out``: its executed copy, HTML
    and tables there are half written until the execution ends and removes it."""
    return out / "running" / (Path(notebook).name + ".json")


def _kernel_manager(folder: Path):
    """A kernel manager class that talks to its kernel over local IPC sockets under ``folder``
    (the default, TCP on localhost, warns that it is unencrypted; IPC needs no network at all)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(folder / "kernel"))
            super().__init__(**kwargs)
            _KERNELS.add(self)

    return IPCKernelManager


_KERNELS: "weakref.WeakSet" = weakref.WeakSet()  # the kernels this process started, to interrupt on Ctrl-C


def interrupt_kernels() -> None:
    """Send SIGINT to every kernel this process started that still runs (their cells stop at once;
    the kernels run in sessions of their own, so a Ctrl-C at the terminal does not reach them)."""
    for km in list(_KERNELS):
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass


_PUBLISH = threading.Lock()  # one execution at a time moves its files and its record into the reports folder


def run_notebook(nb: Path, out: Path, parameters: dict, log_output: bool = True, provenance: dict | None = None,
                 interrupted: threading.Event | None = None) -> dict | None:
    """Execute one notebook into a stage (:mod:`dagmm.staging`) and publish what it wrote into ``out``.

    When the execution finishes, ok or failed, its executed copy, HTML page, the tables, figures
    and findings it wrote, and its record in ``run_log.json`` join ``out`` together; the record is
    returned. When ``interrupted`` is set by then, nothing joins ``out`` and None is returned.
    Cell errors and a dying kernel never raise: they make a failed record, whose ``where`` names
    the cell (:func:`failure_where`). ``log_output`` echoes the cells' output as they run (off when
    notebooks run side by side). ``provenance`` (commit, device, profile, versions) goes into the
    record and the log. An execution with ``reuse_runs`` (a render pass) says ``rendered: true``.
    """
    import papermill as pm

    from . import staging

    out = Path(out)
    provenance = provenance or {}
    nb_name = str(nb.relative_to(paths.ROOT)) if nb.is_relative_to(paths.ROOT) else str(nb)
    marker = running_marker(out, nb.name)  # while it exists, an execution of nb into out is under way
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(dict(pid=os.getpid(), host=platform.node(), started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))))
    try:
        with staging.staged(out, nb.stem) as stage:
            executed = stage / "executed" / nb.name
            executed.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            status, where = "ok", ""
            try:
                pm.execute_notebook(str(nb), str(executed), parameters={**parameters, "reports_dir": str(stage)},
                                    cwd=str(nb.parent), progress_bar=False, log_output=log_output,
                                    kernel_manager_class=_kernel_manager(stage))
            except pm.PapermillExecutionError:
                status, where = "failed", failure_where(executed)
            except Exception as exc:  # noqa: BLE001 - a dead kernel, a timeout: recorded, never raised
                status, where = "failed", failure_where(executed, exc)
            wall = time.perf_counter() - t0
            if interrupted is not None and interrupted.is_set():
                return None
            outputs = staging.written(stage, out)
            html_path = stage / "html" / (nb.stem + ".html")
            files = [str(executed.relative_to(stage)), *outputs]
            if executed.exists():
                try:
                    to_html(executed, html_path, csvs=[o for o in outputs if o.endswith(".csv") and o.startswith("tables/")],
                            aliases={str(stage): str(out), paths.shown(stage): paths.shown(out)})
                    files.append(str(html_path.relative_to(stage)))
                except Exception as exc:  # noqa: BLE001
                    print(f"warning: HTML export of {nb.name} failed: {exc}", file=sys.stderr)
            rec = dict(notebook=nb_name, status=status, where=where, wall_s=round(wall, 1),
                       executed=str(executed.relative_to(stage)), html=str(html_path.relative_to(stage)),
                       outputs=outputs, parameters={k: v for k, v in parameters.items() if k != "reports_dir"},
                       commit=provenance.get("commit", "unknown"), device=provenance.get("device", "unknown"),
                       finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), jobs=provenance.get("jobs", 1))
            if parameters.get("reuse_runs"):
                rec["rendered"] = True
            with _PUBLISH:
                if interrupted is not None and interrupted.is_set():
                    return None
                staging.publish(stage, out, [f for f in files if (stage / f).exists()])
                add_record(out / "run_log.json", rec, provenance)
            return rec
    finally:
        marker.unlink(missing_ok=True)


def add_record(log_path: Path, rec: dict, provenance: dict) -> dict:
    """Merge one finished execution's record into ``run_log.json`` (written atomically); returns the log.

    Each record names its own commit, device and finish time; the log's top level keeps
    only what all share (profile, package versions of the last execution)."""
    from .files import atomic_path

    profile = provenance.get("profile", "full")
    log = {"profile": profile, "versions": provenance.get("versions", {}),
           "notebooks": merge_records(log_path, [rec], profile)}
    with atomic_path(Path(log_path)) as tmp:
        Path(tmp).write_text(json.dumps(log, indent=2) + "\n")
    return log


def dependencies(nbs: list[Path]) -> dict[Path, set[Path]]:
    """For each notebook of a run, the notebooks of the same run it must wait for.

    The summary (``07_*``) waits for every notebook that is not a summary; a
    notebook whose source reads a table another one writes (:data:`READS`:
    notebook 01's ``table2_dagmm.csv``, notebook 06's DAGMM sweep) waits for it.
    """
    deps = {}
    for nb in nbs:
        if nb.name.startswith("07"):
            deps[nb] = {o for o in nbs if not o.name.startswith("07")}
            continue
        source = nb.read_text(encoding="utf-8")
        deps[nb] = {o for prefix, table in READS for o in nbs
                    if o != nb and o.name.startswith(prefix) and table in source}
    return deps


READS = (("01_", "table2_dagmm.csv"), ("06_", "variants_dagmm_heads_sweep.csv"))  # (writer's name prefix, table)


def in_dependency_order(nbs: list[Path]) -> list[Path]:
    """``nbs`` in their given order, except that each comes after the notebooks it waits for
    (:func:`dependencies`), e.g. 04 after 06, whose DAGMM sweep it reads."""
    deps, done, order = dependencies(nbs), set(), []
    waiting = list(nbs)
    while waiting:
        ready = next((nb for nb in waiting if deps[nb] <= done), None)
        if ready is None:  # cannot happen with dependencies() as written
            raise RuntimeError(f"notebooks waiting on each other: {[nb.name for nb in waiting]}")
        waiting.remove(ready)
        done.add(ready)
        order.append(ready)
    return order


def run_notebooks(nbs: list[Path], out: Path, params: dict | Callable[[Path], dict], jobs: int = 1,
                  on_done=None, provenance: dict | None = None, interrupted: threading.Event | None = None) -> list[dict]:
    """Execute ``nbs`` (one at a time in :func:`in_dependency_order` when ``jobs`` is 1), up to ``jobs`` at a time,
    respecting :func:`dependencies`; each publishes into ``out`` when it finishes (:func:`run_notebook`).

    ``params`` are the papermill parameters of every notebook, or a function of
    the notebook's path that returns its own. ``on_done(nb, record)`` is called
    as each finishes. Returns the records in completion order. On Ctrl-C
    (``KeyboardInterrupt``), ``interrupted`` is set, so the executions still
    running publish nothing; they are waited for (their kernels got the
    interrupt too) and the ``KeyboardInterrupt`` is raised again.
    """
    params_of = params if callable(params) else (lambda nb: params)
    interrupted = interrupted or threading.Event()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        # Ctrl-C marks the run interrupted the moment it arrives: a library that turns the KeyboardInterrupt
        # into another exception (a kernel that fails to start, say) must not make it look like a failed run
        default = signal.getsignal(signal.SIGINT)

        def on_sigint(signum, frame):
            interrupted.set()
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)
        try:
            return _run_notebooks(nbs, out, params_of, jobs, on_done, provenance, interrupted)
        finally:
            signal.signal(signal.SIGINT, default)
    return _run_notebooks(nbs, out, params_of, jobs, on_done, provenance, interrupted)


def _run_notebooks(nbs, out, params_of, jobs, on_done, provenance, interrupted):
    records = []

    def finished(nb, rec):
        if rec is not None:
            if on_done:
                on_done(nb, rec)
            records.append(rec)
        if interrupted.is_set():  # the interrupt reached a library that did not re-raise it
            raise KeyboardInterrupt

    if jobs <= 1:
        try:
            for nb in in_dependency_order(nbs):
                print(f"== {nb.name}", flush=True)
                finished(nb, run_notebook(nb, out, params_of(nb), provenance=provenance, interrupted=interrupted))
        except KeyboardInterrupt:
            interrupted.set()
            raise
        return records
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    deps, done, running = dependencies(nbs), set(), {}
    waiting = list(nbs)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        while waiting or running:
            for nb in [nb for nb in waiting if deps[nb] <= done][: jobs - len(running)]:
                waiting.remove(nb)
                print(f"== {nb.name} started", flush=True)
                running[pool.submit(run_notebook, nb, out, params_of(nb), False, provenance, interrupted)] = nb
            if not running:  # cannot happen with dependencies() as written; never spin on it
                raise RuntimeError(f"notebooks waiting on each other: {[nb.name for nb in waiting]}")
            done_now, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done_now:
                nb = running.pop(fut)
                done.add(nb)
                finished(nb, fut.result())
    except KeyboardInterrupt:
        interrupted.set()
        print(f"interrupted: {len(running)} notebook(s) still running ({', '.join(nb.name for nb in running.values())}) "
              "are stopped and keep nothing", file=sys.stderr, flush=True)
        interrupt_kernels()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return records


def log_records(log_path: Path) -> tuple[str | None, list[dict]]:
    """The profile and the notebook records of a ``run_log.json``.

    Each record names its commit and device (a record from before records
    had their own takes the log's). A missing or unreadable log gives
    ``(None, [])``.
    """
    try:
        log = json.loads(Path(log_path).read_text())
    except (OSError, ValueError):
        return None, []
    shared = {"commit": log.get("commit", "unknown"), "device": log.get("device", "unknown")}
    return log.get("profile"), [{**shared, **r} for r in log.get("notebooks", [])]


TRAINED_KEYS = ("commit", "device", "wall_s", "finished", "parameters")


def trained_by(record: dict) -> dict:
    """The provenance of the execution that trained what a record's report shows: the
    record's own, or, for a render pass (which trains nothing), the one it carries."""
    if record.get("rendered"):
        return record.get("trained") or {}
    return {k: record[k] for k in TRAINED_KEYS if k in record}


def merge_records(log_path: Path, records: list[dict], profile: str) -> list[dict]:
    """This run's notebook records plus earlier records (same profile) of notebooks it did not run.

    Running a few notebooks leaves the others' reports in place, so their
    entries in ``run_log.json`` stay (each entry names its own commit and
    device, :func:`log_records`); the result is sorted by notebook name.
    A render pass's record (``rendered``) carries, as ``trained``, the
    provenance of the execution that trained its results (the earlier
    record's, or what that one carried).
    """
    done = {r["notebook"] for r in records}
    prev_profile, prev = log_records(log_path)
    same = prev_profile == profile
    before = {r["notebook"]: r for r in prev} if same else {}
    for r in records:
        if r.get("rendered") and "trained" not in r:
            r["trained"] = trained_by(before[r["notebook"]]) if r["notebook"] in before else {}
    old = [r for r in prev if same and r["notebook"] not in done]
    return sorted(old + records, key=lambda r: r["notebook"])


STUDY = ("A reproducible study of the <em>Deep Autoencoding Gaussian Mixture Model</em> (DAGMM; Zong et al., "
         "ICLR 2018) for unsupervised anomaly detection. Notebook 01 replicates the paper's DAGMM results on its four "
         "tabular benchmarks (KDDCUP99 10%, KDDCUP-Rev, ODDS Thyroid, ODDS Arrhythmia) under its protocol: a 50/50 "
         "split, training on normal rows only, flagging the top &rho; of test energies, 20 seeded runs, with AUROC and "
         "AUPRC and two controls the paper lacks (the same network untrained, and Isolation Forest). Later notebooks "
         "run the paper's baselines and modern detectors, investigate where our numbers differ from the paper's, and "
         "try the extensions people have proposed. Every number on this page is read from the tables the notebooks "
         "wrote.")

INDEX_CSS = """body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.45}
td,th{padding:.2em .7em;text-align:left;vertical-align:top}table.prov{border-collapse:collapse;font-size:14px}
table.prov td,table.prov th{border-bottom:1px solid #eee}h2{margin-top:1.6em}.finding{margin-bottom:1em}
.files{columns:3;font-size:13px}"""


def _markdown(text: str) -> str:
    import mistune

    return mistune.html(text)


def _minutes(seconds) -> str:
    return "" if seconds is None else f"{seconds / 60:.0f} min"


def _when(r: dict) -> str:
    return str(r.get("finished", "")).replace(" UTC", "")


def assembled_from(out: Path, record: dict) -> str:
    """For a notebook whose per-run tables (among its record's ``outputs``) carry a ``commit``
    column with several values: "N executions: ..." with those commits' runs and compute.
    Empty when its tables came from one execution."""
    import pandas as pd

    said = []
    for rel in record.get("outputs", []):
        if not rel.endswith("_runs.csv") or not (out / rel).exists():
            continue
        runs = pd.read_csv(out / rel)
        if "commit" in runs and runs.commit.nunique() > 1:
            hours = runs.seconds.sum() / 3600 if "seconds" in runs else float("nan")
            said.append(f"{Path(rel).name}: {len(runs)} runs from {runs.commit.nunique()} executions "
                        f"({', '.join(sorted(str(c)[:8] for c in runs.commit.unique()))}) on "
                        f"{', '.join(sorted(map(str, runs.device.unique())))}, {hours:.1f} hours of compute")
    return "; ".join(said)


def provenance_rows(records: list[dict], out: Path | None = None) -> list[dict]:
    """Per notebook: the execution that trained what its report shows (commit, device, profile
    parameters, wall time, when), whether its tables were assembled over several executions
    (:func:`assembled_from`), and, for a report re-rendered since, the render's commit."""
    rows = []
    for r in records:
        t = trained_by(r)
        rows.append(dict(notebook=Path(r["notebook"]).stem, status=r.get("status", ""), html=r.get("html", ""),
                         commit=str(t.get("commit", "not recorded")), device=str(t.get("device", "not recorded")),
                         wall_s=t.get("wall_s"), finished=_when(t) if t else "not recorded",
                         rendered=str(r.get("commit", ""))[:12] if r.get("rendered") else "",
                         rendered_at=_when(r) if r.get("rendered") else "",
                         assembled=assembled_from(out, r) if out is not None else ""))
    return rows


def write_index(out: Path, log: dict) -> Path:
    """``index.html``: what the study is, the headline table, the verdicts per dataset, each
    notebook's main finding (``findings/<stem>.md``, written by the notebook), the provenance of
    every report, and the tables, figures and benchmarks under ``out``. Nothing on it is typed
    by hand: the numbers come from ``tables/summary.csv`` (notebook 07) and the findings files."""
    import pandas as pd

    from .reporting import read_findings, table_html
    from .summary import scaling_sentence, verdict_lines

    esc = html.escape
    records = sorted(log["notebooks"], key=lambda r: r["notebook"])
    by_stem = {Path(r["notebook"]).stem: r for r in records}
    stems = sorted(set(report_order()) | set(by_stem))
    findings = read_findings(out)

    def links(folder: str, pattern: str) -> str:
        files = sorted((out / folder).glob(pattern)) if (out / folder).exists() else []
        return "".join(f'<li><a href="{esc(str(f.relative_to(out)))}">{esc(f.name)}</a></li>' for f in files) or "<li>none</li>"

    summary_file = out / "tables" / "summary.csv"
    if summary_file.exists():
        summary = pd.read_csv(summary_file)
        cols = ["dataset", "method", "n_runs", "n_failed", "f1_mean", "f1_std", "auroc_mean", "auroc_std", "auprc_mean",
                "auprc_std", "diff_f1_vs_dagmm", "verdict_f1", "diff_auroc_vs_dagmm", "verdict_auroc", "reported_f1"]
        headline = table_html(summary[[c for c in cols if c in summary.columns]].rename(columns={
            "diff_f1_vs_dagmm": "Δ F1 vs DAGMM", "verdict_f1": "F1 verdict", "diff_auroc_vs_dagmm": "Δ AUROC vs DAGMM",
            "verdict_auroc": "AUROC verdict"}))
        verdicts = _markdown("\n".join(verdict_lines(summary)) + "\n\n" + scaling_sentence(summary))
        head_note = ("<p>Mean ± std over runs (failed runs counted). &ldquo;vs DAGMM&rdquo;: the median per-seed "
                     "difference from notebook 01's DAGMM runs (same splits and seeds) and the verdict of a two-sided "
                     "Wilcoxon signed-rank test, Holm-adjusted within each metric; <em>better</em> or <em>worse</em> "
                     "only where p &lt; 0.05. &ldquo;Δ F1 vs reported&rdquo;: ours minus the F1 the paper (DAGMM and "
                     "its baselines) or the seeds (the variants) report. From <a href=\"tables/summary.csv\">"
                     "tables/summary.csv</a>, written by <a href=\"html/07_summary.html\">notebook 07</a>.</p>")
    else:
        headline, verdicts, head_note = "<p>No summary yet: notebook 07 has not run into this folder.</p>", "", ""

    paras = []
    for stem in stems:
        r = by_stem.get(stem)
        link = (f'<a href="{esc(r["html"])}">{esc(stem)}</a>' if r and (out / r["html"]).exists() else esc(stem))
        text = findings.get(stem)
        body = _markdown(text) if text else "<p><em>No finding recorded: this notebook has not run into this folder since findings were added.</em></p>"
        paras.append(f'<div class="finding"><h3>{link}</h3>{body}</div>')

    prov = provenance_rows(records, out)
    commits = sorted({p["commit"] for p in prov})
    devices = sorted({p["device"] for p in prov})
    one = ("Every report comes from one commit." if len(commits) == 1 else
           f"The reports come from {len(commits)} different commits and {len(devices)} kinds of device: "
           "the study has not been regenerated end to end at one commit.")
    missing = [s for s in stems if s not in by_stem]
    if missing:
        one += f" Not in the run log: {', '.join(missing)}."
    total_h = sum((p["wall_s"] or 0) for p in prov) / 3600
    prow = "".join(
        f"<tr><td>{esc(p['notebook'])}</td><td>{esc(p['status'])}</td><td><code>{esc(p['commit'][:12])}</code></td>"
        f"<td>{esc(p['device'])}</td><td>{_minutes(p['wall_s'])}</td>"
        f"<td>{esc(p['finished'])}</td><td><code>{esc(p['rendered'])}</code> {esc(p['rendered_at'])}</td></tr>"
        + (f"<tr><td></td><td colspan=\"6\" style=\"font-size:13px\">Assembled over several executions: "
           f"{esc(p['assembled'])}</td></tr>" if p["assembled"] else "")
        for p in prov)
    versions = ", ".join(f"{k} {v}" for k, v in log.get("versions", {}).items() if v)
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>DAGMM replicated and extended: findings and reports ({esc(log['profile'])} profile)</title>
<style>{INDEX_CSS}</style></head><body>
<h1>DAGMM, replicated and extended</h1>
<p>{STUDY}</p>
<h2>Headline results: every method and variant against DAGMM</h2>
{head_note}{headline}
<h2>Verdicts per dataset</h2>
{verdicts}
<h2>What each notebook found</h2>
{''.join(paras)}
<h2>Provenance</h2>
<p>{esc(one)} The executions that trained the results shown took {total_h:.1f} hours of wall time in all
({esc(log['profile'])} profile). &ldquo;Rendered&rdquo;: the report was re-executed later from the committed per-run
tables without retraining (commit of that pass). The wall time is that of the execution named; a notebook whose
per-run tables were assembled over several executions says so under its row.</p>
<table class="prov"><tr><th>notebook</th><th>status</th><th>trained at commit</th><th>device</th><th>wall time</th>
<th>finished</th><th>rendered</th></tr>{prow}</table>
<p style="font-size:13px">Packages of the last run: {esc(versions)}</p>
<h2>Files</h2>
<h3>Tables</h3><ul class="files">{links('tables', '*.csv')}</ul>
<h3>Figures</h3><ul class="files">{links('figures', '*.png')}</ul>
<h3>Benchmarks</h3><ul class="files">{links('benchmarks', '*')}</ul>
</body></html>"""
    path = out / "index.html"
    path.write_text(without_machine_paths(page), encoding="utf-8")
    return path


RUN_KEYS = ("dataset", "method", "c", "run")  # the columns that name one run in an accumulating runs table
# per-run tables that executions add to (01b, 01c keep the runs they do not rerun); the others' executions
# replace theirs whole, so a later one may rightly lack earlier rows
ACCUMULATING = ("table2_full_runs.csv", "table3_contamination_runs.csv")


def _runs_lost(src_file: Path, dest_file: Path) -> list[str]:
    """The runs (as "dataset / method ...: n runs") that ``dest_file``, a per-run table, holds and
    ``src_file`` lacks: what copying ``src_file`` over it would drop. Empty when nothing would be."""
    import pandas as pd

    if not dest_file.exists() or not src_file.exists():
        return []
    new, old = pd.read_csv(src_file), pd.read_csv(dest_file)
    keys = [k for k in RUN_KEYS if k in old.columns and k in new.columns]
    if "run" not in keys or not len(old):
        return []
    have = pd.MultiIndex.from_frame(new[keys].astype(str))
    gone = old[~pd.MultiIndex.from_frame(old[keys].astype(str)).isin(have)]
    group = [k for k in keys if k != "run"]
    if not len(gone):
        return []
    if not group:
        return [f"{dest_file.name}: {len(gone)} runs"]
    return [f"{' / '.join(map(str, g if isinstance(g, tuple) else (g,)))}: {len(d)} runs"
            for g, d in gone.groupby(group, sort=False)]


def import_reports(src: Path, out: Path, only=None) -> list[dict]:
    """Copy what a runner wrote into ``src`` (e.g. on a GPU machine) into ``out``.

    Executed notebooks, HTML, tables and figures are copied (files equal to
    the destination's are skipped); the notebooks' records join
    ``out/run_log.json`` (each keeps its own commit and device) and
    ``index.html`` is rewritten. Returns the imported records.

    A notebook that ``out`` holds from a later execution than ``src`` does
    (``src`` started from older reports) is stale there: its record, executed
    copy, HTML and the files its records list as ``outputs`` are not
    imported, so newer results are never overwritten. When such a notebook's
    records predate ``outputs``, nothing is imported (``ValueError``): which
    tables are stale cannot be told.

    Likewise a notebook whose accumulating per-run tables (:data:`ACCUMULATING`
    among its ``outputs``) lack runs that ``out``'s copies hold (two executions that
    each added runs, from the same older reports) is not imported: copying
    would drop those runs. A notebook still executing into ``src`` (its
    :func:`running_marker` exists) is not imported either: its files there
    are half written. These cases are named on stderr.

    ``only`` (file-name prefixes such as ``["01c"]``) imports just those
    notebooks: their records, executed copies, HTML and listed ``outputs``,
    nothing else from ``src`` (so the other notebooks' records there may
    predate ``outputs``). A chosen notebook whose record does not list its
    outputs, or a prefix that matches none, is a ``ValueError``.
    """
    import shutil

    src, out = Path(src), Path(out)
    log_file = src / "run_log.json"
    if not log_file.exists():
        raise FileNotFoundError(f"{src} has no run_log.json: not a folder written by dagmm.runner")
    imported = json.loads(log_file.read_text())
    log_path = out / "run_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {**imported, "notebooks": []}
    if log.get("profile") != imported.get("profile"):
        raise ValueError(f"{src} holds a {imported.get('profile')!r} run, {out} a {log.get('profile')!r} one")
    ours = {r["notebook"]: r for r in log.get("notebooks", [])}
    allowed = None  # files that may be copied (None: every file of the folders below)
    if only:
        chosen = [r for r in imported.get("notebooks", []) if any(Path(r["notebook"]).name.startswith(p) for p in only)]
        missing = [p for p in only if not any(Path(r["notebook"]).name.startswith(p) for r in chosen)]
        if missing:
            raise ValueError(f"{src} has no notebook named {missing}: it holds "
                             f"{[Path(r['notebook']).name for r in imported.get('notebooks', [])]}")
        unlisted = [r["notebook"] for r in chosen if "outputs" not in r]
        if unlisted:
            raise ValueError(f"{src}'s records of {unlisted} do not list the files they wrote: import the whole folder")
        imported = {**imported, "notebooks": chosen}
        allowed = {f for r in chosen for f in (r["executed"], r["html"], *r["outputs"])}
    left_out, skip = {}, set()  # notebook -> why it is not imported; files not to copy
    for r in imported.get("notebooks", []):
        name, mine = r["notebook"], ours.get(r["notebook"])
        if running_marker(src, name).exists():  # its files there are half written; its record is of an earlier execution
            left_out[name] = (f"it is executing into {src} ({running_marker(src, name)} exists; delete it if that "
                              "execution died): import it when it has finished")
            skip |= {r["executed"], r["html"], *r.get("outputs", [])}
        elif mine and str(mine.get("finished", "")) > str(r.get("finished", "")):
            if "outputs" not in mine or "outputs" not in r:
                raise ValueError(
                    f"{out} holds {name} from a later execution ({mine.get('finished')}) than {src} "
                    f"({r.get('finished')}), and their records do not list the files the notebook wrote, so its "
                    "stale tables cannot be told apart: import nothing; copy the newer notebooks' files by hand")
            left_out[name] = f"{out} holds a later execution of it"
            skip |= {r["executed"], r["html"], *r["outputs"], *mine["outputs"]}
        else:
            lost = [line for rel in r.get("outputs", []) if Path(rel).name in ACCUMULATING
                    for line in _runs_lost(src / rel, out / rel)]
            if lost:
                left_out[name] = (f"its runs tables lack runs that {out} holds, which copying them would drop: "
                                  f"{'; '.join(lost)}. Copy the runs table from {out} into {src} (the notebook keeps "
                                  "runs it does not rerun) and rerun the notebook there, or run the missing part in "
                                  "one reports folder")
                skip |= {r["executed"], r["html"], *r["outputs"]}
    for f in sorted(src.rglob("*")):
        rel = f.relative_to(src)
        if not f.is_file() or rel.parts[0] not in ("executed", "html", *STAGED_FOLDERS) or str(rel) in skip:
            continue
        if allowed is not None and str(rel) not in allowed:
            continue
        dest = out / rel
        if dest.exists() and dest.read_bytes() == f.read_bytes():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    for name, why in left_out.items():
        print(f"not imported: {name}: {why}", file=sys.stderr)
    records = [r for r in imported.get("notebooks", []) if r["notebook"] not in left_out]
    for r in records:
        r.setdefault("commit", imported.get("commit", "unknown"))
        r.setdefault("device", imported.get("device", "unknown"))
    log["notebooks"] = merge_records(log_path, records, imported["profile"])
    log_path.write_text(json.dumps(log, indent=2) + "\n")
    write_index(out, log)
    return records


def _update_readme() -> None:
    """The README's headline block from notebook 07's ``summary.csv`` (``table2_dagmm.csv`` before 07 has run)."""
    from .reporting import update_readme

    table = paths.TABLES / "summary.csv"
    if not table.exists():
        table = paths.TABLES / "table2_dagmm.csv"
    if update_readme(paths.ROOT / "README.md", table):
        print(f"README.md: results table updated from reports/tables/{table.name}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="full", choices=["full", "smoke"])
    ap.add_argument("--notebooks", nargs="*", help="notebooks to run (default: notebooks/NN_*.ipynb)")
    ap.add_argument("--out", help="output folder (default: reports/ or reports/smoke/)")
    ap.add_argument("-p", "--parameter", action="append", default=[], metavar="[NB:]KEY=VALUE",
                    help="extra papermill parameter for every notebook, or with NB: only for the notebooks whose file "
                         "name starts with NB (e.g. 01c:methods=DAGMM); the value is parsed as JSON when possible")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks run at once (default 1); see above for the order kept and the threads per kernel")
    ap.add_argument("--render", action="store_true",
                    help="train nothing: re-execute the notebooks with reuse_runs=True, so each rebuilds its tables, "
                         "figures and report from the per-run tables already in the output folder (figures that need "
                         "a trained model's outputs are shown as last saved); run_log.json keeps the provenance of the "
                         "execution that trained them")
    ap.add_argument("--import", dest="imports", nargs="+", metavar="DIR",
                    help="instead of running, copy the reports a runner wrote into DIR (e.g. on another machine) "
                         "into the output folder and merge their run-log entries; a notebook the output folder holds "
                         "from a later execution is not imported (its newer tables are kept)")
    ap.add_argument("--only", nargs="+", metavar="NB",
                    help="with --import: import only the notebooks whose file name starts with NB (e.g. 01c), "
                         "their records and the files they wrote")
    args = ap.parse_args(argv)
    if args.only and not args.imports:
        ap.error("--only goes with --import")
    out = Path(args.out).resolve() if args.out else (paths.REPORTS if args.profile == "full" else paths.REPORTS / "smoke")
    if args.imports:
        for src in args.imports:
            for r in import_reports(Path(src), out, only=args.only):
                print(f"imported {r['notebook']} ({r['status']}, {r.get('device')}, {str(r.get('commit'))[:12]})")
        if args.profile == "full" and out == paths.REPORTS:
            _update_readme()
        return 0
    nbs = [Path(p).resolve() for p in args.notebooks] if args.notebooks else sorted(paths.NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
    # the runner always names the folder: a notebook run by hand, without it, writes under reports/scratch/
    params = {"profile": args.profile, "reports_dir": str(out)}
    if args.render:
        params["reuse_runs"] = True
    scoped = []  # (notebook-name prefix, key, value), applied after the common ones
    for kv in args.parameter:
        k, eq, v = kv.partition("=")
        scope, _, k = k.rpartition(":")
        if not eq or not k.isidentifier():
            ap.error(f"-p {kv}: expected KEY=VALUE or NB:KEY=VALUE")
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            pass
        if scope:
            scoped.append((scope, k, v))
        else:
            params[k] = v
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: expected at least 1")
    missing = [str(nb) for nb in nbs if not nb.is_file()]
    if missing:
        ap.error(f"notebook(s) not found: {', '.join(missing)}")
    unmatched = sorted({s for s, _, _ in scoped if not any(nb.name.startswith(s) for nb in nbs)})
    if unmatched:
        ap.error(f"-p {unmatched[0]}:...: no notebook of this run has a name starting with {unmatched[0]!r}")

    import papermill as pm

    declared = {nb: set(pm.inspect_notebook(str(nb))) for nb in nbs}  # each notebook's parameters cell
    unknown = unknown_parameters(declared, set(params) - set(RUNNER_KEYS), scoped)
    if unknown:
        ap.error("; ".join(unknown))

    def params_of(nb: Path) -> dict:
        """The runner's keys, the common -p keys this notebook declares, then its own -p NB: keys."""
        common = {k: v for k, v in params.items() if k in RUNNER_KEYS or k in declared[nb]}
        return {**common, **{k: v for s, k, v in scoped if nb.name.startswith(s)}}

    versions = _versions()
    provenance = dict(profile=args.profile, commit=git_commit(), device=describe_device(), versions=versions, jobs=args.jobs)
    # the kernels inherit it: a notebook that records its commit names the one it started at, even when the
    # checkout moves on while it runs
    os.environ["DAGMM_COMMIT"] = provenance["commit"]
    pinned = {}
    if args.jobs > 1 and "OMP_NUM_THREADS" not in os.environ:  # the kernels inherit it; restored afterwards
        threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            pinned[var] = os.environ.get(var)
            os.environ[var] = threads

    records = []  # this invocation's finished executions, also when it is interrupted

    def on_done(nb, rec):
        records.append(rec)
        print(f"{'   ' if args.jobs == 1 else '== ' + nb.name + ' '}{rec['status']} in {rec['wall_s']:.0f} s"
              f"{(': ' + rec['where']) if rec['where'] else ''}", flush=True)

    interrupted = False
    try:
        print(f"{len(nbs)} notebook(s) ({args.profile}), "
              f"{'one at a time' if args.jobs == 1 else f'up to {args.jobs} at once'}", flush=True)
        run_notebooks(nbs, out, params_of, args.jobs, on_done, provenance=provenance)
    except KeyboardInterrupt:  # what finished is already published; the rest left nothing behind
        interrupted = True
    finally:
        for var, value in pinned.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    if records:  # the index and the README follow the published reports; an execution that kept nothing changes neither
        _, all_records = log_records(out / "run_log.json")
        write_index(out, {"profile": args.profile, "versions": versions, "notebooks": all_records})
        if args.profile == "full" and out == paths.REPORTS:
            _update_readme()
    failed = [r for r in records if r["status"] != "ok"]  # this invocation's executions only
    for r in failed:
        print(f"FAILED: {r['notebook']} at {r['where']} (executed copy: {out / r['executed']})", file=sys.stderr)
    if records:
        print(f"reports: {out / 'index.html'}")
    if interrupted:
        print(f"interrupted: {len(records)} notebook(s) finished and were published; the interrupted one(s) left "
              f"{out} as it was (rerun them to finish)", file=sys.stderr)
        return 130
    return 1 if failed else 0


RUNNER_KEYS = ("profile", "reports_dir", "reuse_runs")  # parameters the runner sets; every notebook declares them


def unknown_parameters(declared: dict, common: set, scoped: list) -> list[str]:
    """Parameters set on the command line that would be ignored, one message each: a common key
    (``-p KEY=VALUE``) that no notebook of the run declares, or a scoped one (``-p NB:KEY=VALUE``)
    that a notebook it names does not declare. ``declared`` maps each notebook to the names in its
    parameters cell (papermill's :func:`inspect_notebook`)."""
    said = [f"-p {k}=...: no notebook of this run has a parameter {k!r}" for k in sorted(common)
            if not any(k in names for names in declared.values())]
    for prefix, k, _ in scoped:
        for nb, names in declared.items():
            if nb.name.startswith(prefix) and k not in names:
                said.append(f"-p {prefix}:{k}=...: {nb.name} has no parameter {k!r} (its parameters: "
                            f"{', '.join(sorted(names))})")
    return said


if __name__ == "__main__":
    sys.exit(main())
