"""notebooks/client.ipynb runs top to bottom against a live gunicorn, in a real Jupyter kernel."""
import json
import re

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from support import ROOT

NOTEBOOK = ROOT / "notebooks" / "client.ipynb"
# The review the notebook explains; the test asks the API about it directly and compares.
REVIEW = "a brilliant cast, but the plot is dreadful and the story dull"


@pytest.fixture(scope="module")
def executed(live_server, tmp_path_factory):
    """The notebook's code cells after a run against the live server, as {cell id: outputs}."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SENTIMENT_API_URL", live_server.url)
        monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        # Runs in a temporary folder, so nothing is written into the repository; any failing cell raises here.
        client = NotebookClient(notebook, timeout=60, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}})
        client.execute()
    return {cell.id: (cell.source, cell.outputs) for cell in notebook.cells if cell.cell_type == "code"}


def images(outputs):
    """The PNG figures a cell displayed."""
    return [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]


def test_the_client_notebook_runs_every_cell_against_a_live_server(executed, live_server):
    outputs = {cell_id: cell_outputs for cell_id, (_, cell_outputs) in executed.items()}
    text = json.dumps(outputs)
    assert live_server.url in text  # it talked to the server it was pointed at
    tables = [o["data"]["text/html"] for cell in outputs.values() for o in cell if "text/html" in o.get("data", {})]
    assert any("<table" in t and "the plot is a tedious mess" in t and "confidence" in t for t in tables), \
        "no DataFrame of the batch's answers"
    assert any(images(cell) for cell in outputs.values()), "no chart was drawn"
    assert "only whitespace" in text


def test_the_notebook_plots_the_terms_the_api_gives_for_one_explained_answer(executed, live_server):
    [(source, outputs)] = [cell for cell in executed.values() if '"explain": "true"' in cell[0]]
    assert REVIEW in source, "the notebook explains another review than this test checks"
    assert len(images(outputs)) == 1, "the explanation cell drew no chart"
    [table] = [o["data"]["text/html"] for o in outputs if o.get("output_type") == "execute_result"]
    shown = re.findall(r"<tr>\s*<th>\d+</th>\s*<td>([^<]*)</td>\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>",
                       table)
    answer = requests.get(f"{live_server.url}/", params={"query": REVIEW, "explain": "true"}, timeout=10).json()
    expected = answer["explanation"]["terms"][:10]
    assert len(expected) >= 3, "the review should have several known terms to plot"
    assert [term for term, _ in shown] == [t["term"] for t in expected]
    assert [float(c) for _, c in shown] == pytest.approx([t["contribution"] for t in expected], abs=1e-5)
    assert {c > 0 for _, c in ((t, float(c)) for t, c in shown)} == {True, False}, \
        "the review should push both ways, so both bar colours show"
