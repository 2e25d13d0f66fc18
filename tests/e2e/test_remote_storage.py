"""predict.py reading URLs from real storage on loopback: `http://` from Debian's nginx (fsspec's HTTP file
system reads byte ranges) and `s3://` through s3fs from moto's S3 server (the one s3fs's own tests run
against). Both engines write the bytes they write from the local file; Dask workers that cannot see this
machine's files read their own ranges over the network; a missing object is named in the error.
"""
import os
import shutil
import subprocess
import sys

import pytest

from support import NGINX_BINARY, ROOT, DaskCluster, free_port, wait_for, write_kaggle_test, write_reviews
from support import run_predict as run

pytestmark = pytest.mark.skipif(not shutil.which(NGINX_BINARY), reason="nginx is not installed (apt-get install "
                                "nginx-light); CI installs it")
BUCKET = "reviews"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A folder of inputs: plain text of many blocks, the same gzip-compressed, and a Kaggle test file."""
    folder = tmp_path_factory.mktemp("corpus")
    write_reviews(folder / "reviews.txt", 4000, seed=3)
    write_reviews(folder / "reviews.txt.gz", 4000, seed=3, packed=True)
    write_kaggle_test(folder / "test.tsv", 3000)
    return folder


@pytest.fixture(scope="module")
def http_root(corpus, tmp_path_factory):
    """http://127.0.0.1:PORT serving the corpus folder from nginx (which answers Range requests itself)."""
    prefix, port = tmp_path_factory.mktemp("nginx"), free_port()
    config = prefix / "nginx.conf"
    temporary = " ".join(f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                            "uwsgi", "scgi"))
    config.write_text(f"user root; daemon off; pid {prefix / 'nginx.pid'}; error_log {prefix / 'error.log'};\n"
                      f"events {{}}\nhttp {{ access_log {prefix / 'access.log'}; {temporary}\n"
                      f"  server {{ listen 127.0.0.1:{port}; root {corpus}; }} }}\n")
    server = subprocess.Popen([NGINX_BINARY, "-p", str(prefix), "-c", str(config)], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: port_open(port), timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def s3_env(corpus):
    """The environment for clients and workers of moto's S3 server on loopback, its bucket holding the corpus."""
    port = free_port()
    env = {**S3_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port), timeout=60)
        upload = ("import sys, boto3\ns3 = boto3.client('s3')\ns3.create_bucket(Bucket=sys.argv[1])\n"
                  "for path in sys.argv[2:]:\n    s3.upload_file(path, sys.argv[1], path.rsplit('/', 1)[-1])\n")
        subprocess.run([sys.executable, "-c", upload, BUCKET, *map(str, sorted(corpus.iterdir()))],
                       env={**os.environ, **env}, check=True, timeout=60)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def port_open(port):
    """True once something listens on 127.0.0.1:port."""
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def blind_cluster(corpus, s3_env, tmp_path_factory):
    """A scheduler and two workers that cannot see the corpus folder on this machine, only the URLs."""
    started = DaskCluster(tmp_path_factory.mktemp("dask"), workers=2, worker_env=s3_env, hidden=corpus)
    with started.client():
        pass
    yield started
    started.stop()


def url(kind, name, http_root):
    """The corpus file `name` as a URL of `kind`."""
    return f"{http_root}/{name}" if kind == "http" else f"s3://{BUCKET}/{name}"


def scored(tmp_path, sources, model_dir, *args, env):
    """Run predict.py on `sources` (one or a list) with 2 KiB blocks into a new file under tmp_path; return its
    bytes."""
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.csv"
    done = run(*(sources if isinstance(sources, list) else [sources]), "-o", out, "--model-dir", model_dir,
               "--block-size", "2KiB", *args, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


@pytest.mark.parametrize("kind", ["http", "s3"])
@pytest.mark.parametrize("name", ["reviews.txt", "reviews.txt.gz", "test.tsv"])
def test_a_url_is_scored_to_the_local_files_bytes_on_both_engines(
        corpus, http_root, s3_env, blind_cluster, model_dir, tmp_path, kind, name):
    expected = scored(tmp_path, corpus / name, model_dir, env={})
    assert expected.count(b"\n") > 2000
    source = url(kind, name, http_root)
    assert scored(tmp_path, source, model_dir, env=s3_env) == expected
    # A remote cluster and all-URL inputs: the workers read their own ranges (they cannot see the corpus).
    assert scored(tmp_path, source, model_dir, "--engine", "dask", "--scheduler", blind_cluster.address,
                  env=s3_env) == expected


def test_workers_read_s3_ranges_and_write_the_local_engines_parts(corpus, s3_env, blind_cluster, model_dir, tmp_path):
    common = ["--model-dir", model_dir, "--block-size", "2KiB"]
    local = run(corpus / "reviews.txt", "--output-dir", tmp_path / "local", *common)
    dask = run(f"s3://{BUCKET}/reviews.txt", "--output-dir", tmp_path / "dask", *common, "--engine", "dask",
               "--scheduler", blind_cluster.address, env={**os.environ, **s3_env})
    assert local.returncode == 0 and dask.returncode == 0, dask.stderr
    parts = {folder: {p.name: p.read_bytes() for p in (tmp_path / folder).iterdir()} for folder in ("local", "dask")}
    assert len(parts["local"]) > 20 and parts["dask"] == parts["local"]


def test_an_s3_glob_is_expanded_in_sorted_order_and_each_row_names_its_url(corpus, s3_env, model_dir, tmp_path):
    local = scored(tmp_path, [corpus / "reviews.txt", corpus / "reviews.txt.gz"], model_dir, env={})
    for name in ("reviews.txt", "reviews.txt.gz"):
        local = local.replace(f"{corpus / name},".encode(), f"s3://{BUCKET}/{name},".encode())
    assert scored(tmp_path, f"s3://{BUCKET}/reviews.*", model_dir, env=s3_env) == local
    assert local.count(b"s3://reviews/reviews.txt.gz,") == local.count(b"s3://reviews/reviews.txt,") > 3000


def test_workers_without_the_storages_credentials_say_to_let_the_client_read(s3_env, model_dir, tmp_path):
    anonymous = {"AWS_ENDPOINT_URL": s3_env["AWS_ENDPOINT_URL"], "AWS_EC2_METADATA_DISABLED": "true",
                 "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    source = f"s3://{BUCKET}/reviews.txt"
    workers = DaskCluster(tmp_path / "dask", workers=1, worker_env=anonymous)
    try:
        with workers.client():
            pass
        common = [source, "--model-dir", model_dir, "--engine", "dask", "--scheduler", workers.address]
        done = run(*common, "-o", tmp_path / "out.csv", env={**os.environ, **s3_env})
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.splitlines()[-1] == (
            f"error: {source}: cannot be read where the Dask worker runs (NoCredentialsError: Unable to locate "
            "credentials); if only this machine can read it, use --read-on client.")
        assert not (tmp_path / "out.csv").exists()
        done = run(*common, "-o", tmp_path / "out.csv", "--read-on", "client", env={**os.environ, **s3_env})
        assert done.returncode == 0, done.stderr
    finally:
        workers.stop()


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_a_missing_object_is_named_in_the_error(http_root, s3_env, model_dir, tmp_path, kind):
    missing = url(kind, "no-such-reviews.txt", http_root)
    done = run(missing, "-o", tmp_path / "out.csv", "--model-dir", model_dir, env={**os.environ, **s3_env})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == f"error: {missing}: no such file."
    assert not (tmp_path / "out.csv").exists()


def test_the_storage_packages_are_named_when_a_url_kind_needs_one(model_dir, tmp_path):
    done = subprocess.run([sys.executable, "predict.py", "gcs://bucket/reviews.txt", "-o", str(tmp_path / "out.csv"),
                           "--model-dir", str(model_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: gcs://bucket/reviews.txt: reading this kind of URL needs "
                                                   "a package that is not installed (")
    assert done.stderr.splitlines()[-1].endswith("; see docs/batch.md.")
