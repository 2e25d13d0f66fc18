"""The Dask engine: score a corpus's blocks on a Dask cluster, and write them here in input order.

This process (the client) verifies the model folder against its manifest and sends the verified
bytes to every worker inside a worker plugin (`ModelPlugin`), so the workers need no shared file
system: each checks the hashes and its scikit-learn version again, unpickles through the same
restricted unpickler as the service, and keeps the model for the whole run. The plugin is held by
the scheduler, so a worker that joins later (a replacement for one that died) gets the model too.

Each block is one task (`score_on_worker`), which calls `batch.score_block` exactly as the local engine
does. A block's bytes travel inside its task, so when a worker dies the scheduler can run its tasks
again elsewhere. The client keeps a few blocks in flight per worker and writes results in order as
they arrive, so its memory stays flat too.
"""
import logging
import os
import uuid
from collections import deque
from contextlib import contextmanager, suppress

from distributed import Client, LocalCluster, WorkerPlugin, get_worker
from distributed.scheduler import KilledWorker

import batch
import util
from artifacts import ModelError
from model import SentimentModel

# Blocks sent ahead per worker: enough that a worker never waits for the next one while the client
# writes, few enough that the client's memory does not grow with the input.
IN_FLIGHT_PER_WORKER = 2
# How long to wait for a scheduler's first worker before giving up.
WORKER_WAIT_SECONDS = 60


class ModelPlugin(WorkerPlugin):
    """A verified model's bytes, loaded on each worker as it starts (`setup`); refusals are kept, not raised,
    on workers that join later, and `score_on_worker` reports them."""

    def __init__(self, files, origin):
        self.files, self.origin = files, str(origin)
        self.name = f"sentiment-model-{uuid.uuid4().hex}"
        self.model = self.error = None

    def setup(self, worker):
        """Check and load the model on this worker; a refusal names the worker."""
        try:
            self.model = SentimentModel.from_files(self.files, self.origin)
        except ModelError as exc:
            self.error = f"on worker {worker.address}: {exc}"
            raise ModelError(self.error) from None


def score_on_worker(plugin_name, job, block):
    """The Dask task for one block: `batch.score_block` with this worker's copy of the model."""
    plugin = get_worker().plugins[plugin_name]
    if plugin.model is None:
        raise ModelError(plugin.error)
    return batch.score_block(plugin.model, job, block)


def run_dask(verified, job, blocks, deliver, *, scheduler=None, workers=None, quiet=False):
    """Score `blocks` on a Dask cluster and hand each to `deliver(block, rows, data)` in input order.

    `verified` is a `batch.VerifiedModel`; its checked bytes go to the workers. With `scheduler` (an
    address) the run uses that cluster; without, a local cluster of `workers` worker processes that
    lives as long as the run.
    """
    with connect(scheduler, workers, quiet) as client:
        plugin = ModelPlugin(verified.files, verified.folder)
        try:
            client.register_plugin(plugin, name=plugin.name)  # raises the first worker's refusal
            score_in_order(client, plugin.name, job, blocks, deliver)
        finally:  # a shared cluster keeps no copy of the model once the run is over, whatever its end
            with suppress(ValueError, OSError):
                client.unregister_worker_plugin(plugin.name)


def score_in_order(client, plugin_name, job, blocks, deliver):
    """Submit blocks as tasks, a few per worker ahead, and deliver the results in submission order."""
    limit = IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    pending = deque()
    try:
        for block in blocks:
            pending.append((block, client.submit(score_on_worker, plugin_name, job, block,
                                                 key=f"{plugin_name}-block-{block.number}")))
            while len(pending) >= limit:
                deliver_first(pending, deliver)
        while pending:
            deliver_first(pending, deliver)
    finally:
        client.cancel([future for _, future in pending])


def deliver_first(pending, deliver):
    """Wait for the oldest block's result and deliver it; a block that kept killing workers is an error."""
    block, future = pending.popleft()
    try:
        rows, data = future.result()
    except KilledWorker:
        raise util.DataError(f"{block.path}: the Dask workers died each time they scored the block from line "
                             f"{block.first_line}; see the workers' logs (often memory: try --block-size).") from None
    deliver(block, rows, data)


@contextmanager
def connect(scheduler, workers, quiet):
    """A client of the cluster at `scheduler`, or of a local cluster of `workers` processes started here.

    Results come straight from the workers (`direct_to_workers`) rather than through the scheduler."""
    if quiet:
        logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler is None:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR if quiet else logging.WARNING) as local, \
                Client(local, direct_to_workers=True) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout="10s", direct_to_workers=True)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler} ({exc}). Start one with "
                              "`dask scheduler`, or leave out --scheduler to use a local cluster.") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
        except TimeoutError:
            raise ConnectionError(f"the Dask scheduler at {scheduler} has no workers after {WORKER_WAIT_SECONDS} s; "
                                  f"start some with `dask worker {scheduler}`.") from None
        check_code(client, scheduler)
        yield client


def check_code(client, scheduler):
    """Stop before any work, saying what to do, when the scheduler or a worker cannot import this repository's
    modules: both unpickle the tasks, which name its functions and classes."""
    try:
        client.run_on_scheduler(exec, "import batch, cluster")  # exec returns None: nothing to send back
        client.run(exec, "import batch, cluster")
    except ImportError as exc:
        raise ConnectionError(f"the Dask cluster at {scheduler} cannot import this repository's code ({exc}); "
                              "start `dask scheduler` and `dask worker` with the checkout, at the client's commit, "
                              "on PYTHONPATH (docs/batch.md).") from None


def default_workers():
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0))
