"""Arithmetic of the timing benchmarks: full-profile times from short measurements."""
from __future__ import annotations

import math

# epochs ``e`` the timing benchmarks measure a training of each of the paper's data sets with (then ``3 e``):
# about as long as a short training takes to outweigh its set-up on the 2-core CPU
MEASURE_EPOCHS = {"kddcup": 1, "kddcup_rev": 2, "thyroid": 20, "arrhythmia": 20}


def extrapolable(t_e: float, t_3e: float) -> bool:
    """Whether the times of ``e`` and ``3 e`` epochs can be extrapolated: both finite, the longer slower."""
    return math.isfinite(t_e) and math.isfinite(t_3e) and t_3e > t_e


def extrapolate(t_e: float, t_3e: float, e: int, e_full: float) -> float:
    """Seconds for ``e_full`` epochs from the times of ``e`` and ``3 e`` epochs.

    Every epoch of a training has the same steps, so its time is linear in epochs,
    ``t(E) = setup + E * per_epoch``, and two measurements give
    ``t(e) + (t(3e) - t(e)) / (2 e) * (e_full - e)``.

    Returns NaN when ``t_3e <= t_e`` (or either is NaN): a longer training that measured
    no slower than a shorter one means the machine was busier during the shorter one,
    and a line through the two points would give a meaningless (even negative) time.
    """
    if not extrapolable(t_e, t_3e):
        return float("nan")
    return t_e + (t_3e - t_e) / (2 * e) * (e_full - e)


def marginal_speedup(one_e: float, one_3e: float, many_e: float, many_3e: float) -> float:
    """Speedup of the part of a run that grows with the epochs, from runs of ``e`` and ``3 e`` epochs
    in one process (``one_*``) and in several (``many_*``): ``(one_3e - one_e) / (many_3e - many_e)``.

    The rest (starting processes, loading data, scoring) is paid once, so this is what the speedup
    tends to for a full-length training. NaN where either pair cannot be extrapolated
    (:func:`extrapolable`).
    """
    if not (extrapolable(one_e, one_3e) and extrapolable(many_e, many_3e)):
        return float("nan")
    return (one_3e - one_e) / (many_3e - many_e)
