"""cluster.py on a real Dask LocalCluster in this process's machine: the local engine's bytes, in input order,
and a model the workers refuse named with the worker. Clusters started as docs/batch.md says, with faults:
tests/e2e/test_dask_engine.py."""
import random

import pytest

import artifacts
import batch
import cluster
from artifacts import ModelError
from support import FILLER, WORDS


@pytest.fixture
def corpus(tmp_path):
    """A plain-text corpus of 3,000 short reviews, a blank line now and then."""
    rng = random.Random(1)
    vocabulary = [word for words in WORDS.values() for word in words] + FILLER
    path = tmp_path / "reviews.txt"
    path.write_text("".join("\n" if n % 11 == 0 else " ".join(rng.choices(vocabulary, k=rng.randint(1, 8))) + "\n"
                            for n in range(3000)))
    return path


def scored(engine, verified, path):
    """Every delivered block's (number, rows, bytes), in the order delivered."""
    delivered = []
    blocks = batch.read_blocks([path], kaggle=False, block_size=2048)
    engine(verified, batch.Job(kaggle=False), blocks, lambda block, rows, data: delivered.append((block.number,
                                                                                                  rows, data)))
    return delivered


def test_two_workers_deliver_the_local_engines_rows_in_input_order(model_dir, corpus):
    verified = batch.VerifiedModel(model_dir / "binary")
    local = scored(batch.run_local, verified, corpus)
    dask = scored(lambda *args: cluster.run_dask(*args, workers=2, quiet=True), verified, corpus)
    assert [number for number, _, _ in dask] == list(range(len(local))) and len(local) > 20
    assert dask == local


def test_a_model_the_workers_refuse_stops_the_run_naming_the_worker(model_dir, corpus):
    verified = batch.VerifiedModel(model_dir / "binary")
    damaged = verified.files[artifacts.CLASSIFIER_FILE] + b"altered on the way"
    verified.files = {**verified.files, artifacts.CLASSIFIER_FILE: damaged}
    with pytest.raises(ModelError, match=r"^on worker tcp://127\.0\.0\.1:\d+: .*sha256 does not match manifest"):
        scored(lambda *args: cluster.run_dask(*args, workers=1, quiet=True), verified, corpus)
