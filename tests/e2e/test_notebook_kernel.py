"""notebooks/client.ipynb runs top to bottom against a live gunicorn, in a real Jupyter kernel."""
import json

import nbformat
from nbclient import NotebookClient

from support import ROOT

NOTEBOOK = ROOT / "notebooks" / "client.ipynb"


def test_the_client_notebook_runs_every_cell_against_a_live_server(live_server, monkeypatch, tmp_path):
    monkeypatch.setenv("SENTIMENT_API_URL", live_server.url)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Runs in tmp_path, so nothing is written into the repository; any failing cell raises here.
    client = NotebookClient(notebook, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = {i: cell.outputs for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    text = json.dumps(outputs)
    assert live_server.url in text  # it talked to the server it was pointed at
    tables = [o["data"]["text/html"] for cell in outputs.values() for o in cell if "text/html" in o.get("data", {})]
    assert any("<table" in t and "the plot is a tedious mess" in t and "confidence" in t for t in tables), \
        "no DataFrame of the batch's answers"
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for cell in outputs.values() for o in cell), "no chart was drawn"
    assert "only whitespace" in text
