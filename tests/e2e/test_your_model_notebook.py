"""notebooks/your_model.ipynb runs top to bottom in a real Jupyter kernel against a live gunicorn: it
trains a pipeline on scikit-learn's bundled iris data, saves it with skops, adds it with release.py to the
folder the running server serves, calls it, sends feedback and reads the accuracy back."""
import json
import shutil

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from support import ROOT, Server

NOTEBOOK = ROOT / "notebooks" / "your_model.ipynb"


@pytest.fixture(scope="module")
def run(model_dir, tmp_path_factory):
    """(the notebook's code cells' outputs as text, in order; the server it talked to, still running)."""
    models = shutil.copytree(model_dir, tmp_path_factory.mktemp("served") / "models", symlinks=True)
    server = Server(models, env={"MODEL_POLL_SECONDS": "0.5"}).wait_healthy()
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            for name, value in (("SENTIMENT_API_URL", server.url), ("SENTIMENT_HOME", str(ROOT)),
                                ("MODEL_DIR", str(models))):
                monkeypatch.setenv(name, value)
            notebook = nbformat.read(NOTEBOOK, as_version=4)
            # Runs in a temporary folder (its files land there); any failing cell raises here.
            client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                                    resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}})
            client.execute()
        outputs = [json.dumps(cell.outputs) for cell in notebook.cells if cell.cell_type == "code"]
        yield outputs, server
    finally:
        server.stop()


def test_the_notebook_adds_its_pipeline_and_the_running_server_answers_for_it(run):
    outputs, server = run
    text = "\n".join(outputs)
    assert "iris: " in text and "is live at /iris" in text
    assert "largest difference: 0.0" in text  # the answers are the pipeline's own probabilities
    answer = requests.get(f"{server.url}/iris", params={"sepal_length": 5.1, "sepal_width": 3.5,
                                                        "petal_length": 1.4, "petal_width": 0.2}, timeout=10).json()
    assert answer["prediction"] == "setosa" and set(answer["probabilities"]) == {"setosa", "versicolor", "virginica"}


def test_the_feedback_it_sends_comes_back_as_the_models_accuracy(run):
    outputs, server = run
    [summary] = [json.loads(out)[0]["data"]["text/plain"] for out in outputs[-1:]]
    assert "'labels sent back': 38" in summary
    model = next(m for m in requests.get(f"{server.url}/models", timeout=10).json()["models"] if m["name"] == "iris")
    assert model["feedback"]["count"] == 38 and model["kind"] == "tabular-classifier"
    assert f"'their accuracy': {model['feedback']['accuracy']}" in summary
    assert model["feedback"]["accuracy"] == pytest.approx(model["metrics"]["accuracy"], abs=1e-4)
    assert model["metrics"]["accuracy"] > model["metrics"]["baseline"]["accuracy"] + 0.5
