

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
