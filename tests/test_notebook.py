"""notebooks/client.ipynb is committed clean; e2e/test_notebook_kernel.py runs it against a live gunicorn."""
import json

from support import ROOT

NOTEBOOK = ROOT / "notebooks" / "client.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
