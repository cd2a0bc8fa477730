"""A headless Chromium for looking at the rendered reports, from one place.

The report-page test (``tests/test_report_pages.py``) and the screenshot
script (``scripts/screenshot_reports.py``) both start the browser here. It is
the system's Chromium (Debian's ``chromium`` package, ``/usr/bin/chromium``)
driven by playwright-python; playwright never downloads a browser of its own.

Chromium runs as root and without network here, so it is started with
:data:`CHROMIUM_FLAGS` (no sandbox, no GPU, none of its background
connections, which would otherwise hang) and a fresh, temporary profile
directory that is removed when the browser closes.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # playwright is imported only when a browser is started
    from playwright.sync_api import BrowserContext

__all__ = ["CHROMIUM_FLAGS", "WIDTH", "file_url", "find_chromium", "open_browser"]

#: Command-line flags Chromium is started with, besides ``--user-data-dir`` (a fresh
#: temporary profile, which playwright passes from :func:`open_browser`'s folder).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Viewport width in CSS pixels at which reports are loaded and photographed.
WIDTH = 1400

_NETWORK_URL = re.compile(r"^(?:https?|wss?)://", re.IGNORECASE)
_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def find_chromium() -> Path | None:
    """Locate a Chromium binary.

    Returns
    -------
    pathlib.Path or None
        ``$DAGMM_CHROMIUM`` when it is set and names an executable file, else
        ``/usr/bin/chromium``, else ``chromium`` or ``chromium-browser`` on
        ``PATH``; None when there is none.
    """
    env = os.environ.get("DAGMM_CHROMIUM")
    cands = [env] if env else []
    cands.extend(_CANDIDATES)
    for cand in cands:
        found = shutil.which(cand)
        if found:
            return Path(found)
    return None


def file_url(path: str | os.PathLike) -> str:
    """The ``file://`` URL of a local file.

    Parameters
    ----------
    path : str or os.PathLike
        File to point at; made absolute first.

    Returns
    -------
    str
        e.g. ``file:///abs/path/reports/index.html``.
    """
    return Path(path).resolve().as_uri()


@contextmanager
def open_browser(
    width: int = WIDTH,
    height: int = 900,
    executable: str | os.PathLike | None = None,
    offline: bool = True,
) -> Iterator["BrowserContext"]:
    """Start headless Chromium and yield a browser context to open pages in.

    Parameters
    ----------
    width, height : int
        Viewport size in CSS pixels of every page opened in the context.
    executable : str or os.PathLike, optional
        Chromium binary; by default :func:`find_chromium`'s.
    offline : bool, default True
        Abort every http(s) and websocket request, so that a page renders
        from local files alone (as it must without network) and no load
        waits on a connection; ``file:`` and ``data:`` URLs load as usual.

    Yields
    ------
    playwright.sync_api.BrowserContext
        Open pages with ``context.new_page()``; close them when done.

    Raises
    ------
    FileNotFoundError
        When no Chromium binary is found.

    Notes
    -----
    The profile directory is a new temporary folder, removed together with
    the browser on exit.
    """
    from playwright.sync_api import sync_playwright

    exe = Path(executable) if executable is not None else find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium binary (install Debian's 'chromium' or set DAGMM_CHROMIUM)")
    profile = tempfile.mkdtemp(prefix="dagmm-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(exe),
                headless=True,
                args=list(CHROMIUM_FLAGS),
                viewport={"width": width, "height": height},
            )
            try:
                if offline:
                    context.route(_NETWORK_URL, lambda route: route.abort())
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
