"""docs/tutorial.ipynb runs from top to bottom (on a small setting) and draws its figures, so it never goes stale."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO


@pytest.mark.slow
def test_the_tutorial_notebook_runs_and_draws_its_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("GEXINFER_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("GEXINFER_TUTORIAL_OUT", str(tmp_path / "outputs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    notebook = nbformat.read(REPO / "docs" / "tutorial.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 2  # predicted against measured with intervals; held-out correlations of reliable genes
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "ridge: " in printed and "target genes reliable" in printed
    assert (tmp_path / "outputs" / "train").is_dir()  # the runs went where the notebook put them
