"""Process-wide CPU tuning for long trainings, applied only when asked for (:func:`tune_process`).

A library estimator must not change the process it runs in: a plain
``DAGMM().fit(X)`` leaves the C library's malloc, torch's dynamo settings and
the logging configuration as they were. The study (the notebooks, the
runner, the benchmarks) asks for the tuning below by calling
:func:`tune_process` once, before its first fit; it changes where memory
comes from and how many compiled versions dynamo keeps, never results.

Keep freed memory in the process on the CPU, so training steps do not page-fault.

A CPU training step allocates and frees the same few dozen activation
tensors every step. Those of KDDCUP (1024 x 118 floats, 0.5 MB; 20 runs
together: 9.7 MB) are above glibc's default ``mmap`` threshold, or fall back
above it after the heap is trimmed, so every step maps fresh pages and
touches them again: page faults, not arithmetic, then take most of the time
of an elementwise op, many times what it costs once its memory is reused
(docs/speed.md, "Memory"). PyTorch's CPU tuning guide
answers this with jemalloc or tcmalloc via ``LD_PRELOAD``; glibc itself has
the two settings that matter, ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``
(``mallopt(3)``, also the environment variables ``MALLOC_MMAP_THRESHOLD_``
and ``MALLOC_TRIM_THRESHOLD_``), and :func:`retain_freed_memory` sets them
from inside the process (:func:`tune_process` calls it), before the first step.

It changes where memory comes from, never results: the same arithmetic runs
on the same values. The cost is memory: freed blocks below 32 MiB stay with
the process (glibc gives back only the free top of a heap, and only beyond
``trim_threshold``), so its resident size stays near its peak.

Skipped (returns False) when the C library is not glibc or another malloc is
preloaded, when the user has set either environment variable or a
``glibc.malloc`` tunable (theirs win), or when ``DAGMM_MALLOC_TUNING=0``.

The training table itself is the other half: a mini-batch gathers 1024
random rows (20 runs: 20480) of KDDCUP's 233 MB table, one 4 KB page each,
so nearly every row missed the TLB and, with the step's activations having
pushed the page tables out of the cache, walked them from memory: several
times slower than from :func:`huge_page_array` memory (2 MB pages,
``madvise(MADV_HUGEPAGE)``), and a large share of the whole step. Training tables
go there only once :func:`tune_process` has switched huge pages on.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os

import numpy as np

__all__ = ["tune_process", "is_tuned", "retain_freed_memory", "huge_page_array", "describe", "MMAP_THRESHOLD", "TRIM_THRESHOLD",
           "HUGE_PAGE_MIN_BYTES"]

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit systems)
TRIM_THRESHOLD = 256 * 1024 * 1024

HUGE_PAGE_MIN_BYTES = 16 * 1024 * 1024  # smaller tables fit the TLB's reach with 4 KB pages
_HUGE = 2 * 1024 * 1024

_state: dict = {}  # what this process was asked for and got: "applied" (malloc), "huge_pages", "tuned"


def tune_process(*, malloc: bool = True, huge_pages: bool = True, compile_settings: bool = True) -> dict:
    """Apply this project's process-wide CPU tuning; a plain fit never does.

    Call it once, before the first fit, in a process that trains for long
    (the study's notebooks and runner, the benchmarks). Results do not change,
    only where memory comes from and what dynamo keeps. The settings stay for
    the rest of the process (glibc's cannot be undone).

    Parameters
    ----------
    malloc : bool, default True
        :func:`retain_freed_memory`: glibc's ``mallopt`` mmap and trim thresholds.
    huge_pages : bool, default True
        Put large training tables in memory advised for transparent huge pages
        (:func:`huge_page_array`, ``madvise(MADV_HUGEPAGE)``).
    compile_settings : bool, default True
        For ``torch_compile=True`` fits: raise ``torch._dynamo.config.recompile_limit``
        to at least :data:`dagmm.engine.training.COMPILE_LIMIT` and filter inductor's
        "missing a c-shim implementation" notices (logger ``torch._inductor.ir``)
        for the whole process. Without them each compiled fit applies the same
        two settings while it trains and puts them back afterwards.

    ``DAGMM_MALLOC_TUNING=0`` in the environment still turns the first two off.

    Returns
    -------
    dict
        ``malloc``, ``huge_pages``, ``compile_settings``: what was applied.
    """
    out = dict(malloc=False, huge_pages=False, compile_settings=False)
    if malloc:
        out["malloc"] = retain_freed_memory()
    if huge_pages and not _opted_out():
        _state["huge_pages"] = True
        out["huge_pages"] = True
    if compile_settings:
        from .training import quiet_cpp_wrapper_notices, raise_compile_limit

        raise_compile_limit()
        quiet_cpp_wrapper_notices()
        out["compile_settings"] = True
    _state["tuned"] = dict(malloc=malloc, huge_pages=huge_pages, compile_settings=compile_settings)
    return out


def is_tuned() -> dict | None:
    """The arguments :func:`tune_process` was called with in this process, or None
    (worker processes of the study repeat the call with them)."""
    return _state.get("tuned")


def _glibc():
    """The process's C library if it is glibc and its ``malloc`` is the one in use, else None
    (musl and others; or jemalloc / tcmalloc loaded with ``LD_PRELOAD``, which glibc's settings do not reach)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # raises AttributeError on musl and others
        in_use = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
        return libc if in_use == ctypes.cast(libc.malloc, ctypes.c_void_p).value else None
    except (OSError, AttributeError):
        return None


def retain_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Serve allocations below ``mmap_threshold`` bytes from the heap, and give freed
    memory back to the system only beyond ``trim_threshold`` bytes.

    Process-wide; called by :func:`tune_process`, never by a fit. Idempotent: the
    first call in a process decides, later calls return its answer.

    Returns
    -------
    bool
        Whether the settings were applied.
    """
    if "applied" in _state:
        return _state["applied"]
    applied = False
    users_own = any(v in os.environ for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")) or "glibc.malloc." in os.environ.get(
        "GLIBC_TUNABLES", ""
    )
    if not _opted_out() and not users_own:
        libc = _glibc()
        if libc is not None:
            # mallopt returns 1 on success, 0 on error; the trim threshold alone makes
            # things worse (measured), so it is set only once the mmap threshold took
            applied = bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold))
            )
    _state.update(applied=applied, mmap_threshold=int(mmap_threshold), trim_threshold=int(trim_threshold))
    return applied


def huge_page_array(shape, dtype=np.float32) -> np.ndarray | None:
    """An uninitialised array in anonymous memory advised for transparent huge pages.

    For tables that mini-batches gather random rows from (see the module
    docstring). Returns None, and the caller allocates as usual, unless
    :func:`tune_process` switched huge pages on; and when the
    array is smaller than :data:`HUGE_PAGE_MIN_BYTES`, when the system has no
    ``MADV_HUGEPAGE`` (not Linux) or transparent huge pages are off, or with
    ``DAGMM_MALLOC_TUNING=0``. The kernel may still back some of it with
    small pages; values never depend on it. The memory lives as long as the
    array (and any tensor made from it).
    """
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if (not _state.get("huge_pages") or nbytes < HUGE_PAGE_MIN_BYTES or _opted_out()
            or not hasattr(mmap, "MADV_HUGEPAGE") or not _thp_available()):
        return None
    try:
        buf = mmap.mmap(-1, -(-nbytes // _HUGE) * _HUGE)
        buf.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return None
    return np.frombuffer(buf, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize).reshape(shape)


def _opted_out() -> bool:
    return os.environ.get("DAGMM_MALLOC_TUNING", "1") == "0"


def _thp_available() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            return "[never]" not in fh.read()
    except OSError:
        return False


def describe() -> str:
    """One line for benchmark reports: how this process's allocator is set."""
    if _state.get("applied"):
        return (f"glibc malloc keeping freed memory (dagmm.engine.allocator: mmap threshold {_state['mmap_threshold'] >> 20} MiB, "
                f"trim threshold {_state['trim_threshold'] >> 20} MiB)")
    return "the C library's malloc as configured by the environment (dagmm.engine.allocator not applied)"
