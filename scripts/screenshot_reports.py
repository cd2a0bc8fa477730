"""Full-page PNG screenshots of report pages, as a reader's browser shows them.

Loads each page as a ``file://`` URL in headless Chromium (started by
:func:`dagmm.browser.open_browser`, network blocked) at 1400 px wide and saves
the whole scrolled page to ``reports/screenshots/<stem>.png``. By default:
``reports/index.html`` and ``reports/html/01_replication.html``.

Usage::

    python scripts/screenshot_reports.py [PAGE.html ...] [--out DIR] [--width PX]

Needs Debian's ``chromium`` (``apt-get install chromium``). The screenshots
are for looking at, not for committing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dagmm import browser, paths
from dagmm.files import atomic_path

DEFAULT_PAGES = (paths.REPORTS / "index.html", paths.HTML / "01_replication.html")
SCREENSHOTS = paths.REPORTS / "screenshots"


def screenshot_pages(pages, out_dir: Path = SCREENSHOTS, width: int = browser.WIDTH) -> list[Path]:
    """Save a full-page screenshot of each page as ``out_dir/<stem>.png``.

    Parameters
    ----------
    pages : iterable of path-like
        HTML files to photograph.
    out_dir : pathlib.Path
        Folder of the PNG files (created if needed).
    width : int
        Viewport width in CSS pixels.

    Returns
    -------
    list of pathlib.Path
        The PNG files written, in the order of ``pages``.
    """
    out_dir = Path(out_dir)
    written = []
    with browser.open_browser(width=width) as context:
        for html in map(Path, pages):
            if not html.is_file():
                raise FileNotFoundError(html)
            page = context.new_page()
            try:
                page.goto(browser.file_url(html), wait_until="load", timeout=60_000)
                dest = out_dir / f"{html.stem}.png"
                with atomic_path(dest, suffix=".png") as tmp:
                    page.screenshot(path=str(tmp), full_page=True, type="png")
            finally:
                page.close()
            written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="*", type=Path, help="HTML files (default: index and 01_replication)")
    ap.add_argument("--out", type=Path, default=SCREENSHOTS, help=f"output folder (default: {SCREENSHOTS})")
    ap.add_argument("--width", type=int, default=browser.WIDTH, help="viewport width in px")
    args = ap.parse_args(argv)
    if browser.find_chromium() is None:
        print("no chromium binary: apt-get install chromium (or set DAGMM_CHROMIUM)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    for png in screenshot_pages(args.pages or DEFAULT_PAGES, args.out, args.width):
        print(png)
    print(f"[screenshots] {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
