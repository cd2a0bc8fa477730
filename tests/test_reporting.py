def test_atomic_writes_give_the_usual_permissions_and_leave_no_temporary_file(tmp_path):
    import os
    import stat

    import pandas as pd

    from dagmm.files import atomic_path
    from dagmm.reporting import save_table

    old = os.umask(0o022)
    try:
        path = save_table(pd.DataFrame({"a": [1]}), tmp_path / "t" / "x.csv")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's owner-only 0o600
        os.umask(0o077)
        save_table(pd.DataFrame({"a": [2]}), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and pd.read_csv(path).a.tolist() == [2]
    finally:
        os.umask(old)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    assert pd.read_csv(path).a.tolist() == [2]  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.csv"]


def test_provenance_lists_each_kept_pair_with_its_distinct_values():
    import numpy as np
    import pandas as pd

    from dagmm.reporting import provenance

    runs = pd.DataFrame(dict(dataset=["thyroid"] * 3 + ["kddcup"], method="X", run=[0, 1, 2, 0],
                             commit=["b", "a", "a", "c"], label_fraction=[0.2, np.nan, 0.2, 0.1]))
    got = provenance(runs, ["commit", "device", "label_fraction"])  # no device column: left out
    assert got.to_dict("records") == [
        dict(dataset="thyroid", method="X", rows=3, commit="a, b", label_fraction="0.2, not recorded"),
        dict(dataset="kddcup", method="X", rows=1, commit="c", label_fraction="0.1")]
    assert list(provenance(runs.iloc[:0]).columns) == ["dataset", "method", "rows", "commit"]
