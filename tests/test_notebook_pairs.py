"""Every notebook is paired with a py:percent twin (the file people edit and review), and
the two hold the same cells. A failure here means someone edited one side only: edit the
.py, run ``jupytext --sync notebooks/NN_name.py`` and re-execute the notebook."""
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
IPYNB = sorted(NOTEBOOKS.glob("*.ipynb"))


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_has_a_twin_and_every_twin_a_notebook():
    assert len(IPYNB) == 11
    assert {p.stem for p in IPYNB} == {p.stem for p in NOTEBOOKS.glob("*.py")}


@pytest.mark.parametrize("ipynb", IPYNB, ids=lambda p: p.stem)
def test_the_pair_holds_the_same_cells(ipynb):
    executed = nbformat.read(ipynb, as_version=4)
    twin = jupytext.read(ipynb.with_suffix(".py"))
    a, b = cells(executed), cells(twin)
    assert len(a) == len(b), f"{ipynb.name}: {len(a)} cells, its .py twin {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"{ipynb.name}: cell {i} differs from its .py twin (run jupytext --sync)"


def test_the_pairing_is_configured_for_jupyter_and_jupytext():
    """``[tool.jupytext] formats`` makes Jupyter and ``jupytext --sync`` pair every notebook."""
    import tomllib

    conf = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text())
    assert conf["tool"]["jupytext"]["formats"] == "ipynb,py:percent"
