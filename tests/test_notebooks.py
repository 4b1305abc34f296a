"""Every researcher notebook executes top to bottom on a short horizon (nbclient, the venv's python3 kernel)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_the_notebooks_exist():
    """Corridor sizing, tariff design, the manager comparison and the Gymnasium policy ship with the product."""
    assert [p.stem for p in NOTEBOOKS] == [
        "01_corridor_sizing",
        "02_tariff_design",
        "03_compare_managers",
        "04_gym_policy",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    """The notebook is committed without outputs, runs without an error on one day and two seeds, and plots."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "clear the outputs"
    monkeypatch.setenv("CHARGETWIN_NOTEBOOK_DAYS", "1")
    monkeypatch.setenv("CHARGETWIN_NOTEBOOK_REPLICATIONS", "2")
    monkeypatch.setenv("CHARGETWIN_NOTEBOOK_WORKERS", "2")
    monkeypatch.setenv("CHARGETWIN_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # the platformdirs layout jupyter_core moves to; no warning
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    nbformat.write(notebook, tmp_path / path.name)
    outputs = [output for cell in code for output in cell.outputs]
    assert any("image/png" in output.get("data", {}) for output in outputs), "the notebook shows no figure"
    assert any("runs done" in output.get("text", "") for output in outputs)
    assert (tmp_path / "out").is_dir()
