"""Every committed report page, rendered in a real headless Chromium and checked.

Pages: ``reports/index.html`` and every ``reports/html/*.html``, each loaded
as a ``file://`` URL at :data:`dagmm.browser.WIDTH` (1400 px) wide with the
network blocked. On each page:

* every ``<img>`` finished loading and has a natural width;
* every relative link or source (``a``/``link`` href, ``img``/``script`` src)
  names a file that exists beside the page;
* no table is truncated by pandas (a ``...`` cell, an "N rows x M columns" note);
* no machine path (:data:`MACHINE_PATH`) shows in the text or in a link;
* and over all pages, each title is set, is not nbconvert's default
  "Notebook", and is no other page's.

One browser serves the whole module and each page is loaded once. The module
is skipped where no Chromium is installed (``.ci/run`` installs Debian's), but
not under CI, where a missing browser is an error.
"""
from __future__ import annotations

import base64
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from dagmm import browser, paths

_IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
_MISSING = None
if browser.find_chromium() is None:
    _MISSING = "no chromium binary (apt-get install chromium, or set DAGMM_CHROMIUM)"
else:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _MISSING = "playwright is not installed (pip install -r requirements.txt)"
if _MISSING and _IN_CI:
    raise RuntimeError(f"test_report_pages: {_MISSING}; .ci/run should have installed it")
if _MISSING:
    pytest.skip(_MISSING, allow_module_level=True)

#: Paths of a particular machine: home and temporary folders, checkouts under /work,
#: a Windows drive. Not matched inside a longer path segment (``data/tmp/``) or a URL's host.
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])/+(?:root|home|tmp|work|Users|private/var|var/folders)/"
    r"|(?<![\w.~-])file:/+[^\s\"'<>]*"
    r"|(?<![\w])[A-Za-z]:\\"
)
#: A pandas truncation note, as ``DataFrame._repr_html_`` ("63 rows × 3 columns")
#: or the text repr ("[63 rows x 3 columns]") writes it.
TRUNCATION_NOTE = re.compile(r"\b\d+\s+rows\s*[×x]\s*\d+\s+columns\b")
ELLIPSES = ("...", "\u2026")
#: References that are not files beside the page.
NOT_A_FILE = re.compile(r"^(?:https?:|mailto:|javascript:|data:|#)", re.IGNORECASE)
HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
DEFAULT_TITLE = "Notebook"

PAGES = [paths.REPORTS / "index.html", *sorted(paths.HTML.glob("*.html"))]

# Runs in the page: forces lazy images to load, waits (at most 10 s) for every
# image to settle, and collects what the checks need.
_SCAN_JS = r"""
async () => {
  const imgs = [...document.images];
  for (const im of imgs) { if (im.loading === 'lazy') im.loading = 'eager'; }
  await Promise.race([
    Promise.all(imgs.map(im => im.complete ? null : new Promise(done => {
      im.addEventListener('load', done, {once: true});
      im.addEventListener('error', done, {once: true});
    }))),
    new Promise(done => setTimeout(done, 10000)),
  ]);
  const short = v => (v && v.startsWith('data:') && v.length > 80) ? v.slice(0, 60) + '...' : v;
  const refs = [];
  for (const [tag, attr] of [['a', 'href'], ['img', 'src'], ['link', 'href'], ['script', 'src']]) {
    for (const el of document.querySelectorAll(`${tag}[${attr}]`)) {
      refs.push([tag, attr, short(el.getAttribute(attr))]);
    }
  }
  const cells = [];
  document.querySelectorAll('table').forEach((table, t) => {
    table.querySelectorAll('td, th').forEach(cell => {
      const s = cell.textContent.trim();
      if (s === '...' || s === '\u2026') {
        cells.push([t + 1, cell.parentElement.rowIndex + 1, cell.cellIndex + 1, s]);
      }
    });
  });
  return {
    title: document.title,
    text: document.body ? document.body.innerText : '',
    images: imgs.map(im => [short(im.getAttribute('src') || ''), im.complete, im.naturalWidth]),
    refs: refs,
    cells: cells,
  };
}
"""


@dataclass
class PageScan:
    """What the checks need of one rendered page."""

    path: Path
    name: str  # for messages: the path under reports/ (or the file name)
    title: str
    text: str  # visible text (innerText)
    images: list  # [src, complete, naturalWidth]
    refs: list  # [tag, attribute, value]
    cells: list  # [table, row, column, text] of cells that are an ellipsis


def _page_name(path: Path) -> str:
    try:
        return path.relative_to(paths.REPORTS).as_posix()
    except ValueError:
        return path.name


def scan_page(context, path: Path) -> PageScan:
    """Load ``path`` in a new page of ``context`` and collect what the checks need."""
    path = Path(path).resolve()
    page = context.new_page()
    try:
        page.goto(browser.file_url(path), wait_until="load", timeout=60_000)
        got = page.evaluate(_SCAN_JS)
    finally:
        page.close()
    return PageScan(path, _page_name(path), got["title"], got["text"], got["images"], got["refs"], got["cells"])


# -- the checks: each returns one message per problem, naming the page and the item


def image_problems(scan: PageScan) -> list[str]:
    """Images that did not load (missing file, not an image, still pending)."""
    return [
        f"{scan.name}: <img src={src!r}> did not load (complete={complete}, naturalWidth={width})"
        for src, complete, width in scan.images
        if not (complete and width > 0)
    ]


def _ref_target(page: Path, value: str) -> Path | str | None:
    """The file a reference names, None for one that is not a file, or why it cannot be one."""
    value = value.strip()
    if not value or NOT_A_FILE.match(value) or value.startswith("//"):
        return None  # the page itself, an external URL, an anchor
    if HAS_SCHEME.match(value):
        return "not a relative link"
    rel = unquote(value.split("#", 1)[0].split("?", 1)[0])
    if not rel:
        return None  # "?query" alone: the page itself
    if rel.startswith("/"):
        return "an absolute path, not relative to the page"
    return page.parent / rel


def link_problems(scan: PageScan) -> list[str]:
    """Relative links and sources whose file does not exist beside the page."""
    out = []
    for tag, attr, value in scan.refs:
        target = _ref_target(scan.path, value)
        if target is None:
            continue
        if isinstance(target, str):
            out.append(f"{scan.name}: <{tag} {attr}={value!r}> is {target}")
        elif not target.exists():
            out.append(f"{scan.name}: <{tag} {attr}={value!r}> names a missing file")
    return list(dict.fromkeys(out))


def truncation_problems(scan: PageScan) -> list[str]:
    """Tables that pandas truncated: ellipsis cells and "N rows x M columns" notes."""
    by_table = defaultdict(list)
    for t, r, c, text in scan.cells:
        by_table[t].append((r, c, text))
    out = [
        f"{scan.name}: table {t} is truncated: {len(cells)} cell(s) are an ellipsis, "
        f"the first {cells[0][2]!r} at row {cells[0][0]} column {cells[0][1]}"
        for t, cells in by_table.items()
    ]
    out += [
        f"{scan.name}: pandas truncation note {m.group(0)!r} in the text"
        for m in TRUNCATION_NOTE.finditer(scan.text)
    ]
    return out


def _path_token(s: str, start: int) -> str:
    """The machine path starting at ``start``, up to white space or a quote."""
    return re.match(r"[^\s\"'<>)\]]*", s[start:]).group(0).rstrip(".,;:")[:120]


def machine_path_problems(scan: PageScan) -> list[str]:
    """Machine paths in the visible text or in a link or source."""
    out = []
    for m in MACHINE_PATH.finditer(scan.text):
        out.append(f"{scan.name}: machine path in the text: {_path_token(scan.text, m.start())!r}")
    for tag, attr, value in scan.refs:
        if value.lower().startswith("data:"):
            continue  # base64 may spell anything
        if MACHINE_PATH.search(value):
            out.append(f"{scan.name}: machine path in <{tag} {attr}={value!r}>")
    return list(dict.fromkeys(out))


def title_problems(scans: list[PageScan]) -> list[str]:
    """Titles that are empty, nbconvert's default, or shared with another page."""
    out = []
    by_title = defaultdict(list)
    for scan in scans:
        title = scan.title.strip()
        if not title:
            out.append(f"{scan.name}: empty <title>")
        elif title == DEFAULT_TITLE:
            out.append(f"{scan.name}: <title> is nbconvert's default {DEFAULT_TITLE!r}")
        else:
            by_title[title].append(scan.name)
    out += [
        f"<title> {title!r} is shared by {', '.join(names)}"
        for title, names in by_title.items()
        if len(names) > 1
    ]
    return out


def _report(problems: list[str], limit: int = 20) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problem(s):\n" + "\n".join(problems[:limit]) + more


# -- fixtures


@pytest.fixture(scope="module")
def context():
    with browser.open_browser() as ctx:
        yield ctx


@pytest.fixture(scope="module")
def scan(context):
    """``scan(path)``: the page's :class:`PageScan`, each page loaded once per module."""
    cache: dict[Path, PageScan] = {}

    def get(path: Path) -> PageScan:
        key = Path(path).resolve()
        if key not in cache:
            cache[key] = scan_page(context, key)
        return cache[key]

    return get


# -- the committed reports

page_param = pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])


PAGE_CHECKS = {"images load": image_problems, "relative links resolve": link_problems,
               "tables not truncated": truncation_problems, "no machine paths": machine_path_problems}


@pytest.mark.parametrize("check", PAGE_CHECKS)
@page_param
def test_committed_page(scan, page, check):
    problems = PAGE_CHECKS[check](scan(page))
    assert not problems, _report(problems)


@pytest.mark.parametrize("page", PAGES[1:], ids=[p.stem for p in PAGES[1:]])
def test_every_report_shows_its_figures_and_the_index_links_it(scan, page):
    assert scan(page).images, f"{_page_name(page)} shows no figure: its notebook saves figures without displaying them"
    index_refs = {value for _, _, value in scan(PAGES[0]).refs}
    assert f"html/{page.name}" in index_refs, f"index.html does not link {page.name}"


def test_titles_set_and_distinct(scan):
    problems = title_problems([scan(p) for p in PAGES])
    assert not problems, _report(problems)


# -- the checks themselves, on hand-made pages

_PNG = base64.b64decode(  # 1 x 1 transparent PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_GOOD = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="style.css?v=2"><script src="js/app.js"></script></head><body>
<h1 id="top">Results</h1>
<img src="fig%20one.png" alt="a figure"> <img src="data:image/png;base64,{png}" alt="inline">
<p><a href="#top">top</a> <a href="other.html#sec">other</a> <a href="https://example.com/home/x">web</a>
<a href="mailto:a@b.c">mail</a> <a href="javascript:void(0)">js</a> <a href="">self</a></p>
<p>Figures are saved to reports/figures/ and data/tmp/ is a project folder.</p>
<table><tr><th>dataset</th><th>F1</th></tr><tr><td>thyroid</td><td>0.48</td></tr></table>
<div style="display:none">/tmp/hidden is not visible text</div>
</body></html>"""
_BAD = """<!doctype html><html><head><title>Notebook</title>
<script src="js/gone.js?v=1"></script></head><body>
<img src="missing.png"> <img src="not_an_image.png" loading="lazy">
<p><a href="nowhere.html#x">gone</a> <a href="file:///home/me/report.html">abs</a>
<a href="/etc/hostname">rooted</a></p>
<p>Loaded data from /work/shared/datasets and saved /tmp/s/q2/fig.png; C:\\Users\\me\\x.csv</p>
<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>...</td></tr><tr><td>\u2026</td><td>2</td></tr></table>
<p>63 rows \u00d7 3 columns</p>
</body></html>"""


def _write_site(root: Path) -> tuple[Path, Path, Path]:
    (root / "js").mkdir()
    (root / "js" / "app.js").write_text("document.title = document.title;\n")
    (root / "style.css").write_text("body { margin: 1em }\n")
    (root / "fig one.png").write_bytes(_PNG)
    (root / "not_an_image.png").write_text("this is not a PNG\n")
    good = root / "good.html"
    good.write_text(_GOOD.format(title="Good page", png=base64.b64encode(_PNG).decode()))
    other = root / "other.html"
    other.write_text(_GOOD.format(title="Other page", png=base64.b64encode(_PNG).decode()))
    bad = root / "bad.html"
    bad.write_text(_BAD)
    return good, other, bad


CHECKS = [image_problems, link_problems, truncation_problems, machine_path_problems]


def test_checks_pass_a_good_page(context, tmp_path):
    good, other, _ = _write_site(tmp_path)
    scans = [scan_page(context, good), scan_page(context, other)]
    for s in scans:
        assert len(s.images) == 2 and len(s.refs) >= 10, s
        for check in CHECKS:
            assert check(s) == [], check.__name__
    assert title_problems(scans) == []


def test_checks_catch_a_bad_page(context, tmp_path):
    good, _, bad = _write_site(tmp_path)
    s = scan_page(context, bad)

    images = image_problems(s)
    assert len(images) == 2 and all(p.startswith("bad.html: <img src=") for p in images), images
    assert "'missing.png'" in images[0] and "'not_an_image.png'" in images[1]

    links = "\n".join(link_problems(s))
    for item in ("js/gone.js?v=1", "missing.png", "nowhere.html#x", "file:///home/me/report.html", "/etc/hostname"):
        assert item in links, (item, links)
    assert "not_an_image.png" not in links  # it exists; that it is no image is the image check's
    assert len(link_problems(s)) == 5

    trunc = truncation_problems(s)
    assert len(trunc) == 2, trunc
    assert trunc[0] == "bad.html: table 1 is truncated: 2 cell(s) are an ellipsis, the first '...' at row 2 column 2"
    assert trunc[1] == "bad.html: pandas truncation note '63 rows \u00d7 3 columns' in the text"

    machine = "\n".join(machine_path_problems(s))
    for item in ("'/work/shared/datasets'", "'/tmp/s/q2/fig.png'", r"'C:\\Users", "'file:///home/me/report.html'"):
        assert item in machine, (item, machine)

    titles = title_problems([s, scan_page(context, good)])
    assert titles == ["bad.html: <title> is nbconvert's default 'Notebook'"]
    twin = PageScan(tmp_path / "twin.html", "twin.html", "Good page", "", [], [], [])
    assert title_problems([scan_page(context, good), twin]) == [
        "<title> 'Good page' is shared by good.html, twin.html"
    ]
    assert title_problems([PageScan(bad, "x.html", "  ", "", [], [], [])]) == ["x.html: empty <title>"]


@pytest.mark.parametrize(
    "text, hit",
    [
        ("saved to /tmp/x.png", True),
        ("see /home/me/x", True),
        ("at /root/.cache/torch", True),
        ("run in /work/main/reports", True),
        ("on a Mac: /Users/me/x and /private/var/folders/x", True),
        ("(/work/runC/reports)", True),
        ("C:\\Users\\me", True),
        ("file:///srv/x.html", True),
        ("reports/figures/01_loss.png", False),
        ("data/tmp/ and lib/work/x", False),
        ("https://github.com/a/home/b", False),
        ("2 rows in /tmpfoo", False),
    ],
)
def test_machine_path_regex(text, hit):
    assert bool(MACHINE_PATH.search(text)) is hit
