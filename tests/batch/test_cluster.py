"""cluster.py on a real Dask LocalCluster on this machine, both ways of feeding it: the local engine's bytes in
input order, parts the workers write themselves, and errors that name the file and line. Clusters started
as docs/batch.md says, with workers killed and remote storage: tests/e2e/."""
import os

import pytest

import util
from batch import blocks as batch
from batch import cluster, inputs
from store import artifacts
from store.artifacts import ModelError
from support import ROOT, write_kaggle_test, write_reviews

SIZE = 2048  # small blocks, so that a few thousand lines make dozens of tasks


@pytest.fixture(scope="module")
def fine_grained(model_dir):
    """The fine-grained model, verified, as predict.py hands it to both engines."""
    return batch.VerifiedModel(model_dir / "fine-grained")


@pytest.fixture(scope="module")
def dask(fine_grained):
    """(client, plugin name) of a local cluster of two workers holding the fine-grained model."""
    with cluster.session(fine_grained, workers=2, quiet=True) as session:
        yield session


def collected():
    """A `deliver` callback and the list it fills with each block's (file, first line, rows, data)."""
    delivered = []
    return delivered, lambda block, rows, data: delivered.append((block.path, block.first_line, rows, data))


def local(verified, job, paths):
    """What the local engine delivers for `paths`."""
    delivered, deliver = collected()
    batch.run_local(verified, job, inputs.read_blocks(paths, kaggle=job.kaggle, block_size=SIZE), deliver)
    return delivered


def on_workers(dask, job, paths, staging=None):
    """What the workers deliver when they read `paths` themselves."""
    delivered, deliver = collected()
    cluster.score_cells(*dask, job, inputs.plan_cells(paths, kaggle=job.kaggle, block_size=SIZE), deliver,
                        block_size=SIZE, staging=staging)
    return delivered


def test_blocks_the_client_reads_come_back_as_the_local_engines_rows_in_input_order(fine_grained, dask, tmp_path):
    path = write_reviews(tmp_path / "reviews.txt", 3000)
    job = batch.Job(kaggle=False)
    delivered, deliver = collected()
    cluster.score_blocks(*dask, job, inputs.read_blocks([path], kaggle=False, block_size=SIZE), deliver)
    expected = local(fine_grained, job, [path])
    assert len(expected) > 20 and delivered == expected


@pytest.mark.parametrize("kind", ["plain", "several files", "gzip", "kaggle"])
def test_workers_reading_their_own_byte_ranges_deliver_the_local_engines_rows(fine_grained, dask, tmp_path, kind):
    if kind == "kaggle":
        paths, job = [write_kaggle_test(tmp_path / "test.tsv", 1500)], batch.Job(kaggle=True)
    elif kind == "several files":
        paths = [write_reviews(tmp_path / f"part{n}.txt", 700 + 300 * n, seed=n) for n in range(3)]
        job = batch.Job(kaggle=False, file_column=True)
    else:
        paths = [write_reviews(tmp_path / "reviews.txt.gz", 3000, packed=kind == "gzip")]
        job = batch.Job(kaggle=False)
    expected, delivered = local(fine_grained, job, paths), on_workers(dask, job, paths)
    if job.kaggle:  # rows carry their PhraseIds: a Kaggle block learns its first line only to name a bad one
        expected, delivered = ([(path, rows, data) for path, _, rows, data in blocks]
                               for blocks in (expected, delivered))
    assert len(expected) > 10 and delivered == expected


def test_workers_write_their_own_parts_and_the_folder_matches_the_local_engines(fine_grained, dask, tmp_path):
    path = write_reviews(tmp_path / "reviews.txt", 3000)
    job = batch.Job(kaggle=False)
    header = job.header(fine_grained.labels)
    with batch.FolderOutput(tmp_path / "local", header) as output:
        batch.run_local(fine_grained, job, inputs.read_blocks([path], kaggle=False, block_size=SIZE),
                        lambda block, rows, data: output.write(block, data))
    with batch.FolderOutput(tmp_path / "workers", header) as output:
        delivered, deliver = collected()
        cells = inputs.plan_cells([path], kaggle=False, block_size=SIZE)
        cluster.score_cells(*dask, job, cells, lambda block, rows, data: (output.write(block, data),
                                                                           deliver(block, rows, data)),
                            block_size=SIZE, staging=str(output.staging))
    assert all(isinstance(data, batch.WrittenPart) for *_, rows, data in delivered if rows)
    files = {folder: {part.name: part.read_bytes() for part in (tmp_path / folder).iterdir()}
             for folder in ("local", "workers")}
    assert len(files["local"]) > 20 and files["workers"] == files["local"]


@pytest.mark.parametrize("kaggle", [False, True], ids=["plain", "kaggle"])
def test_a_bad_line_far_into_a_file_is_named_with_its_file_and_line(dask, tmp_path, kaggle):
    path = write_kaggle_test(tmp_path / "test.tsv", 1500) if kaggle else write_reviews(tmp_path / "reviews.txt", 3000)
    lines = path.read_bytes().split(b"\n")
    lines[1234] = b"156061\tno phrase" if kaggle else b"caf\xe9 society"  # line 1235 of the file
    path.write_bytes(b"\n".join(lines))
    message = "2 tab-separated fields" if kaggle else "not UTF-8 text"
    with pytest.raises(util.DataError, match=rf"^{path}: line 1235: {message}"):
        on_workers(dask, batch.Job(kaggle=kaggle), [path])


def test_a_file_that_shrinks_during_the_run_stops_it_naming_the_file(dask, tmp_path):
    path = write_reviews(tmp_path / "reviews.txt", 3000)
    size = path.stat().st_size
    cells = inputs.plan_cells([path], kaggle=False, block_size=SIZE)
    path.write_bytes(path.read_bytes()[: size // 2])
    with pytest.raises(util.DataError, match=rf"^{path}: changed during the run \({size:,} bytes when it started"):
        cluster.score_cells(*dask, batch.Job(kaggle=False), cells, lambda *_: None, block_size=SIZE)


def test_an_output_folder_the_workers_cannot_see_says_to_share_it_or_use_a_file(dask, tmp_path):
    path = write_reviews(tmp_path / "reviews.txt", 100)
    with pytest.raises(util.DataError, match=f"^{tmp_path / 'elsewhere'}: the folder of --output-dir is not there "
                                             "where the Dask worker runs; give an --output-dir on a file system every "
                                             "worker shares, or use -o FILE"):
        on_workers(dask, batch.Job(kaggle=False), [path], staging=str(tmp_path / "elsewhere" / ".scores.x"))


def test_a_model_the_workers_refuse_stops_the_run_naming_the_worker(model_dir):
    verified = batch.VerifiedModel(model_dir / "binary")
    damaged = verified.files[artifacts.CLASSIFIER_FILE] + b"altered on the way"
    verified.files = {**verified.files, artifacts.CLASSIFIER_FILE: damaged}
    with pytest.raises(ModelError, match=r"^on worker tcp://127\.0\.0\.1:\d+: .*sha256 does not match manifest"), \
            cluster.session(verified, workers=1, quiet=True):
        pass


def test_a_local_clusters_workers_start_with_the_environment_docs_batch_md_gives_dask_worker(dask):
    client, _ = dask
    seen = client.run(lambda: {name: os.environ.get(name) for name in cluster.WORKER_ENVIRONMENT})
    assert len(seen) == 2 and all(found == cluster.WORKER_ENVIRONMENT for found in seen.values()), seen
    assert "MALLOC_MMAP_THRESHOLD_=33554432" in (ROOT / "docs" / "batch.md").read_text()
