"""Writes a generated notebook: the one place the ``make_*notebook*.py`` scripts turn cells into a file."""
from pathlib import Path

import nbformat as nbf

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def write_notebook(filename: str, cells: list) -> Path:
    """Write ``cells`` to ``notebooks/<filename>`` without outputs, for a Python 3 kernel.

    Cell ids are ``<number>-NN`` by position (e.g. ``01b-03``; nbformat draws
    random ones), so regenerating an unchanged notebook changes nothing.
    """
    nb = nbf.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        cell.id = f"{filename.split('_')[0]}-{i:02d}"
    path = NOTEBOOKS / filename
    path.write_text(nbf.writes(nb))
    return path
