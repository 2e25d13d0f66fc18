"""predict.py's Dask engine on real clusters: `dask scheduler` and two `dask worker` processes on loopback,
and the local cluster `--workers 2` starts, with the workers reading the inputs and the client reading them.
The output is the local engine's, byte for byte, for both input kinds; a worker killed mid-run is replaced
and its blocks scored again; bad lines, files the workers cannot see and a model a worker refuses stop the
run with the reason and leave no output.
"""
import os
import re
import signal
import subprocess
import sys

import pytest

from support import ROOT, DaskCluster, free_port, wait_for
from support import run_predict as run
from support import write_kaggle_test as kaggle_test
from support import write_reviews as reviews


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers, for the module."""
    started = DaskCluster(tmp_path_factory.mktemp("dask"), workers=2)
    with started.client():
        pass
    yield started
    started.stop()


def both_engines(tmp_path, inputs, model_dir, *args, dask=()):
    """Score `inputs` with the local engine and the Dask engine (`dask` options); return both outputs' bytes."""
    outputs = []
    for name, engine in (("local.csv", []), ("dask.csv", ["--engine", "dask", *dask])):
        done = run(*inputs, "-o", tmp_path / name, "--model-dir", model_dir, "--block-size", "2KiB", *args, *engine)
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / name).read_bytes())
    return outputs


READ_ON = pytest.mark.parametrize("read_on", ["workers", "client"])


@READ_ON
@pytest.mark.parametrize("kind", ["kaggle", "text", "several gzip texts", "explained"])
def test_the_dask_engine_writes_the_local_engines_bytes(cluster, model_dir, tmp_path, kind, read_on):
    if kind == "kaggle":
        inputs, args = [kaggle_test(tmp_path / "test.tsv", 3000)], []
    elif kind == "several gzip texts":
        inputs = [reviews(tmp_path / f"part{n}.txt.gz", 1500, seed=n, packed=True) for n in range(3)]
        args = ["--model", "binary"]
    else:
        inputs = [reviews(tmp_path / "reviews.txt", 3000)]
        args = ["--explain", "3"] if kind == "explained" else []
    local, dask = both_engines(tmp_path, inputs, model_dir, *args,
                               dask=["--scheduler", cluster.address, "--read-on", read_on])
    assert local == dask and local.count(b"\n") > 2000
    assert model_plugins(cluster) == []  # the scheduler keeps no copy of the model after the run


def model_plugins(cluster):
    """The names of the model plugins a cluster's scheduler holds."""
    with cluster.client() as client:
        names = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    return [name for name in names if name.startswith("sentiment-model-")]


@READ_ON
def test_a_local_cluster_of_two_workers_writes_the_same_bytes_and_folders(model_dir, tmp_path, read_on):
    text = reviews(tmp_path / "reviews.txt", 4000)
    local, dask = both_engines(tmp_path, [text], model_dir, dask=["--workers", "2", "--read-on", read_on])
    assert local == dask
    for engine in (["--engine", "local"], ["--engine", "dask", "--workers", "2", "--read-on", read_on]):
        done = run(text, "--output-dir", tmp_path / engine[1], "--model-dir", model_dir, "--block-size", "2KiB",
                   *engine)
        assert done.returncode == 0, done.stderr
    parts = {engine: sorted(p.name for p in (tmp_path / engine).iterdir()) for engine in ("local", "dask")}
    assert parts["local"] == parts["dask"] and "_SUCCESS" in parts["dask"] and len(parts["dask"]) > 20
    assert all((tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()
               for name in parts["local"])


def test_the_real_kaggle_test_file_becomes_the_same_submission_on_both_engines(
        cluster, kaggle_model_dir, kaggle_dir, tmp_path):
    local, dask = both_engines(tmp_path, [kaggle_dir / "test.tsv.gz"], kaggle_model_dir,
                               dask=["--scheduler", cluster.address])
    assert local == dask and local.count(b"\n") == 66_293


@READ_ON
@pytest.mark.parametrize("kind", ["kaggle", "text"])
def test_a_bad_line_stops_a_dask_run_naming_it_and_leaves_no_output(cluster, model_dir, tmp_path, kind, read_on):
    if kind == "kaggle":
        path = kaggle_test(tmp_path / "test.tsv", 3000)
        lines = path.read_bytes().split(b"\n")
        lines[2400] = b"PHRASE\t1\tnot an id"
        problem = "PhraseId 'PHRASE' is not a whole number"
    else:
        path = reviews(tmp_path / "reviews.txt", 3000)
        lines = path.read_bytes().split(b"\n")
        lines[2400] = b"caf\xe9"
        problem = "not UTF-8 text"
    path.write_bytes(b"\n".join(lines))
    for where in (["-o", tmp_path / "out.csv"], ["--output-dir", tmp_path / "out"]):
        done = run(path, *where, "--model-dir", model_dir, "--block-size", "2KiB", "--engine", "dask",
                   "--scheduler", cluster.address, "--read-on", read_on)
        assert done.returncode == 2 and done.stderr.splitlines()[-1] == f"error: {path}: line 2401: {problem}" \
            + (". Fix or remove the line." if kind == "kaggle" else "."), done.stderr
        assert sorted(tmp_path.iterdir()) == [path]
    assert problem not in cluster.output()  # bad input is the run's answer, not a failure in the workers' logs


@pytest.mark.parametrize("read_on, output", [("client", "-o"), ("workers", "-o"), ("workers", "--output-dir")])
def test_a_worker_killed_mid_run_is_replaced_and_its_blocks_scored_again(cluster, model_dir, tmp_path, read_on,
                                                                           output):
    text = reviews(tmp_path / "reviews.txt", 150_000)
    expected = run(text, output, tmp_path / "local", "--model-dir", model_dir, "--block-size", "16KiB")
    assert expected.returncode == 0, expected.stderr
    with cluster.client() as client:
        before = set(client.scheduler_info()["workers"])
        job = subprocess.Popen([sys.executable, "predict.py", str(text), output, str(tmp_path / "dask"),
                                "--model-dir", str(model_dir), "--block-size", "16KiB", "--engine", "dask",
                                "--scheduler", cluster.address, "--read-on", read_on],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
        busy = wait_for(lambda: [w for w, tasks in client.processing().items() if tasks], timeout=120)
        assert busy, job.communicate()[1]
        victim = busy[0]
        os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
        assert job.poll() is None  # killed while the run was scoring
        _, error = job.communicate(timeout=600)
        assert job.returncode == 0, error
        client.wait_for_workers(2, timeout=60)  # the nanny started a replacement
        after = set(client.scheduler_info()["workers"])
    assert victim not in after and len(after - before) == 1
    assert written(tmp_path / "dask") == written(tmp_path / "local")


def written(path):
    """The bytes of an output file, or of each file in an output folder by name."""
    return path.read_bytes() if path.is_file() else {part.name: part.read_bytes() for part in path.iterdir()}


@READ_ON
def test_a_block_that_kills_every_worker_it_meets_stops_the_run_naming_where_it_starts(model_dir, tmp_path, read_on):
    crashing = tmp_path / "crash_on_marker.py"  # as the kernel's out-of-memory killer would end a worker
    crashing.write_text(  # dask may run a preload twice in one process: wrap the original only
        "import os\nfrom batch import blocks as batch\n"
        "score_block = getattr(batch.score_block, 'original', batch.score_block)\n\n\n"
        "def crash_on_marker(scorer, job, block):\n"
        "    if b'KILL-THIS-WORKER' in block.data:\n"
        "        os._exit(1)\n"
        "    return score_block(scorer, job, block)\n\n\n"
        "crash_on_marker.original = score_block\n"
        "batch.score_block = crash_on_marker\n")
    text = reviews(tmp_path / "reviews.txt", 3000)
    lines = text.read_text().split("\n")
    lines[1999] = "KILL-THIS-WORKER"
    text.write_text("\n".join(lines))
    crashy = DaskCluster(tmp_path / "dask", workers=2, preload=crashing)
    try:
        with crashy.client():
            pass
        done = run(text, "-o", tmp_path / "out.csv", "--model-dir", model_dir, "--block-size", "2KiB",
                   "--engine", "dask", "--scheduler", crashy.address, "--read-on", read_on)
    finally:
        crashy.stop()
    assert done.returncode == 2, done.stderr
    error = done.stderr.splitlines()[-1]
    first_line = int(re.fullmatch(rf"error: {re.escape(str(text))}: the Dask workers died each time they scored the "
                                  r"block from line (\d+); see the workers' logs \(often memory: try --block-size\)\.",
                                  error).group(1))
    assert 1900 < first_line <= 2000  # the block holding line 2000 (blocks of 2 KiB hold about 90 lines)
    assert not (tmp_path / "out.csv").exists()


def test_files_the_workers_cannot_see_stop_the_run_saying_to_let_the_client_read_them(model_dir, tmp_path):
    private = tmp_path / "private"  # on this machine only, as the workers see it
    private.mkdir()
    text = reviews(private / "reviews.txt", 2000)
    blind = DaskCluster(tmp_path / "dask", workers=2, hidden=private)
    try:
        with blind.client():
            pass
        common = ["--model-dir", model_dir, "--block-size", "2KiB", "--engine", "dask", "--scheduler", blind.address]
        done = run(text, "-o", tmp_path / "out.csv", *common)  # a scheduler on loopback: auto lets the workers read
        assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith(
            f"error: {text}: cannot be read where the Dask worker runs (")
        assert done.stderr.splitlines()[-1].endswith("; if only this machine can read it, use --read-on client.")
        hidden_output = run(reviews(tmp_path / "shared.txt", 200), "--output-dir", private / "scores", *common)
        assert hidden_output.returncode == 2 and hidden_output.stderr.splitlines()[-1] == (
            f"error: {private}: the folder of --output-dir is not there where the Dask worker runs; give an "
            "--output-dir on a file system every worker shares, or use -o FILE.")
        local, dask = both_engines(tmp_path, [text], model_dir, dask=[*common[-2:], "--read-on", "client"])
    finally:
        blind.stop()
    assert local == dask and local.count(b"\n") > 1500
    assert sorted(path.name for path in private.iterdir()) == ["reviews.txt"]


def test_a_model_a_worker_refuses_stops_the_run_with_the_workers_reason(model_dir, tmp_path):
    other_sklearn = tmp_path / "other_sklearn.py"  # a worker with another scikit-learn installed, as it reads it
    other_sklearn.write_text("import store.artifacts\nstore.artifacts.SKLEARN_VERSION = '0.24.2'\n")
    refusing = DaskCluster(tmp_path / "dask", workers=1, preload=other_sklearn)
    try:
        with refusing.client():
            pass
        text = reviews(tmp_path / "reviews.txt", 100)
        done = run(text, "-o", tmp_path / "out.csv", "--model-dir", model_dir, "--engine", "dask",
                   "--scheduler", refusing.address)
        assert model_plugins(refusing) == []
    finally:
        refusing.stop()
    assert done.returncode == 1
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: on worker tcp://127.0.0.1:")
    assert "manifest.json: trained with scikit-learn" in error and "but 0.24.2 is installed" in error
    assert not (tmp_path / "out.csv").exists()


def test_a_scheduler_without_this_code_is_a_clear_error_before_any_work(model_dir, tmp_path):
    bare = DaskCluster(tmp_path / "dask", workers=1, scheduler_code=False)
    try:
        with bare.client():
            pass
        done = run(reviews(tmp_path / "reviews.txt", 100), "-o", tmp_path / "out.csv", "--model-dir", model_dir,
                   "--engine", "dask", "--scheduler", bare.address)
    finally:
        bare.stop()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: the Dask cluster at {bare.address} cannot import this repository's code (No module named 'batch'); "
        "start `dask scheduler` and `dask worker` with the checkout, at the client's commit, on PYTHONPATH "
        "(docs/batch.md).")
    assert not (tmp_path / "out.csv").exists()


def test_an_unreachable_scheduler_is_a_clear_error(model_dir, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    done = run(reviews(tmp_path / "reviews.txt", 10), "-o", tmp_path / "out.csv", "--model-dir", model_dir,
               "--engine", "dask", "--scheduler", address)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(f"error: cannot reach the Dask scheduler at {address}")
    assert not (tmp_path / "out.csv").exists()
