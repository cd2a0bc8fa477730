"""dagmm.engine.allocator: once asked for (tune_process), CPU training reuses freed memory instead of
page-faulting, and results do not change; a plain fit applies nothing.

Each case runs in a fresh interpreter: the malloc settings are per process and
cannot be undone once applied.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from dagmm import paths

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

SCRIPT = textwrap.dedent(
    """
    import hashlib, json, os, resource
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from dagmm import DAGMM
    from dagmm.engine import allocator
    from dagmm.estimator import build_module
    from dagmm.engine.training import Stepper, make_generators

    if os.environ.get("TUNE") == "1":
        allocator.tune_process()  # what the notebooks and the runner ask for
    DAGMM(hidden=(4,), n_components=2, epochs=1, device="cpu", random_state=0).fit(np.random.rand(64, 5))  # a plain fit
    # KDDCUP's 20-run training step (batch 1024, 118 features): activations up to 9.7 MB each
    est = DAGMM.from_paper("kddcup")
    module = build_module(est, 20, 118)
    module.reset_parameters(make_generators(range(20)))
    stepper = Stepper(module, est.lr, est.lambda_energy, est.lambda_cov)
    X = torch.rand(20, 1024, 118, generator=torch.Generator().manual_seed(0))
    mask = torch.full((20, 1024, est.estimation_hidden), 2.0)
    for _ in range(5):
        stepper(X, mask)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        stepper(X, mask)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 30
    # the weights after those 35 steps, to compare across settings
    weights = torch.cat([p.detach().flatten() for p in module.parameters()]).numpy()
    print(json.dumps(dict(applied="keeping freed memory" in allocator.describe(), describe=allocator.describe(),
                          faults_per_step=faults, weights=hashlib.sha256(weights.tobytes()).hexdigest())))
    """
)


def run(**env):
    drop = ("DAGMM_MALLOC_TUNING", "LD_PRELOAD", "GLIBC_TUNABLES")
    full = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k not in drop}
    full.update(env, PYTHONPATH=str(paths.ROOT / "lib"))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=full, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tuned():
    return run(TUNE="1")


@pytest.fixture(scope="module")
def untuned():
    return run()  # plain fits only


def test_applied_when_asked_for_and_only_then(tuned, untuned):
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").gnu_get_libc_version
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert tuned["applied"] and "keeping freed memory" in tuned["describe"]
    assert not untuned["applied"] and "not applied" in untuned["describe"]


def test_steps_stop_page_faulting_and_weights_are_unchanged(tuned, untuned):
    if not tuned["applied"]:
        pytest.skip("the settings were not applied here (not glibc)")
    # glibc's defaults map and fault in fresh pages for the step's multi-MB activations
    # (about 16000 faults per step measured, 160 with the settings)
    assert tuned["faults_per_step"] < untuned["faults_per_step"] / 2, (tuned, untuned)
    assert tuned["weights"] == untuned["weights"]


@pytest.mark.parametrize("env", [dict(MALLOC_MMAP_THRESHOLD_="131072"), dict(DAGMM_MALLOC_TUNING="0")])
def test_the_users_own_malloc_settings_and_the_opt_out_win(env):
    out = run(TUNE="1", **env)
    assert not out["applied"]


def test_training_table_in_huge_page_memory_holds_the_same_values(monkeypatch):
    import numpy as np
    import torch

    from dagmm.engine import allocator
    from dagmm.engine.training import table_to_device

    rng = np.random.default_rng(0)
    big = rng.normal(size=(allocator.HUGE_PAGE_MIN_BYTES // 8 + 3, 2))  # float64, 16 MiB + a bit as float32
    assert allocator.huge_page_array(big.shape) is None  # not unless tune_process switched huge pages on
    monkeypatch.setitem(allocator._state, "huge_pages", True)  # as tune_process does
    t = table_to_device(big, "cpu")
    assert t.dtype == torch.float32 and t.shape == big.shape
    np.testing.assert_array_equal(t.numpy(), big.astype(np.float32))
    t2 = table_to_device(torch.as_tensor(big), "cpu")  # a tensor works as well as an array
    assert torch.equal(t, t2)
    big[0, 0] = 99.0  # a copy: the caller's array stays the caller's
    assert t[0, 0] != 99.0
    # small tables, and the opt-out, get ordinary memory
    assert allocator.huge_page_array((10, 118)) is None
    monkeypatch.setenv("DAGMM_MALLOC_TUNING", "0")
    assert allocator.huge_page_array(big.shape) is None
    np.testing.assert_array_equal(table_to_device(big, "cpu").numpy(), big.astype(np.float32))


def test_training_tables_are_row_major_whatever_the_input_layout():
    """Mini-batches gather whole rows: a column-major (pandas' Fortran-order) table is copied row-major,
    small or large, array or tensor, with the same values."""
    import numpy as np
    import torch

    from dagmm.engine import allocator
    from dagmm.engine.training import table_to_device

    rng = np.random.default_rng(0)
    for n in (3772, allocator.HUGE_PAGE_MIN_BYTES // 24 + 5):  # Thyroid's size; one in huge-page memory
        f = np.asfortranarray(rng.normal(size=(n, 6)))
        for X in (f, torch.as_tensor(f)):
            t = table_to_device(X, "cpu")
            assert t.is_contiguous() and t.stride() == (6, 1)
            np.testing.assert_array_equal(t.numpy(), f.astype(np.float32))
