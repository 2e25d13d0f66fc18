"""The Dask engine: score a corpus's blocks on a Dask cluster, and deliver them here in input order.

This process (the client) verifies the model folder against its manifest and sends the verified
bytes to every worker inside a worker plugin (`ModelPlugin`), so the workers need no copy of the
models: each checks the hashes and its scikit-learn version again, unpickles through the same
restricted unpickler as the service, and keeps the model for the whole run. The plugin is held by
the scheduler, so a worker that joins later (a replacement for one that died) gets the model too.

Two ways to feed the workers, both calling `batch.score_block` exactly as the local engine does:
- **Workers read** (`score_cells`): each task names a `inputs.Cell`, a byte range of a file or URL every
  worker can open; the worker reads it, cuts it with the local engine's rule, scores it and, with
  `--output-dir`, writes its part into the output folder itself. The client only orders the results.
  Plain text needs each block's first line number in its rows, so a small task per block counts its
  lines first (submitted ahead, at a higher priority); a Kaggle file's rows carry PhraseIds, so its
  blocks are counted only when one holds a bad line, to name that line.
- **The client reads** (`score_blocks`): each block's bytes travel inside its task, for inputs only
  this machine can read.
Either way a task holds all it needs, so when a worker dies the scheduler runs its tasks again
elsewhere. The client keeps a few tasks in flight per worker, so its memory stays flat.
"""
import dataclasses
import functools
import logging
import os
import uuid
from collections import deque
from contextlib import contextmanager, suppress

from distributed import Client, LocalCluster, WorkerPlugin, get_worker
from distributed.scheduler import KilledWorker

import kinds
import util
from batch import blocks as batch
from batch import inputs
from store.artifacts import ModelError

# Blocks sent ahead per worker: enough that a worker never waits for the next one while the client
# writes, few enough that the client's memory does not grow with the input.
IN_FLIGHT_PER_WORKER = 2
# What the workers of a local cluster get in their environment, and what docs/batch.md asks of `dask worker`.
# Dask's nanny sets MALLOC_TRIM_THRESHOLD_ for its workers, which also stops glibc from raising its mmap
# threshold as it otherwise does: each array of a block (over 128 KiB) is then mapped and unmapped afresh,
# page faults and all. Mapping only what is over 32 MiB keeps them in the heap, as in the local engine.
WORKER_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20)}
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
            self.model = kinds.from_files(self.files, self.origin)
        except ModelError as exc:
            self.error = f"on worker {worker.address}: {exc}"
            raise ModelError(self.error) from None


def worker_model(plugin_name):
    """This worker's copy of the run's model, or the `ModelError` it refused it with."""
    plugin = get_worker().plugins[plugin_name]
    if plugin.model is None:
        raise ModelError(plugin.error)
    return plugin.model


@dataclasses.dataclass(frozen=True)
class Refused:
    """What a task returns instead of raising a `DataError` or `ModelError`: bad input is the run's answer,
    not a worker's failure, so it leaves no traceback in the workers' logs. `answer` raises it here."""
    error: type
    message: str


def refusing(task):
    """A Dask task that returns a `Refused` for bad input or an unusable model, rather than raising it."""
    @functools.wraps(task)
    def run(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except (util.DataError, ModelError) as exc:
            return Refused(type(exc), str(exc))
    return run


def answer(future):
    """A task's result; the `DataError` or `ModelError` it refused with, raised here."""
    result = future.result()
    if isinstance(result, Refused):
        raise result.error(result.message)
    return result


@refusing
def score_on_worker(plugin_name, job, block):
    """The Dask task for one block read by the client: `batch.score_block` with this worker's model."""
    return batch.score_block(worker_model(plugin_name), job, block)


@refusing
def count_on_worker(cell, block_size):
    """The Dask task that counts the lines of one cell, read on the worker."""
    return inputs.count_cell_lines(cell, block_size)


@refusing
def score_cell_on_worker(plugin_name, job, cell, block_size, first_line, staging):
    """The Dask task for one cell read on the worker: a list of (block, rows, data) in order, the blocks
    without their bytes. With `staging` (the output folder being filled) the worker writes each block's
    part there itself, and data is its `batch.WrittenPart`; without, data is the rows' bytes."""
    model = worker_model(plugin_name)
    results = []
    for number, block in enumerate(inputs.read_cell_blocks(cell, block_size, first_line)):
        rows, data = batch.score_block(model, job, block)
        if staging is not None and rows:
            data = write_on_worker(staging, f".cell-{cell.file:06d}-{cell.offset or 0:015d}-{number:05d}.csv",
                                   job.header(model.labels) + data)
        results.append((dataclasses.replace(block, data=b""), rows, data))
    return results


def write_on_worker(staging, name, data):
    """Write a part into the output folder being filled; `DataError` when this worker cannot see it."""
    try:
        batch.write_part(os.path.join(staging, name), data)
    except FileNotFoundError:
        raise util.DataError(f"{os.path.dirname(staging)}: the folder of --output-dir is not there where the Dask "
                             "worker runs; give an --output-dir on a file system every worker shares, or use -o FILE."
                             ) from None
    return batch.WrittenPart(name)


@contextmanager
def session(verified, *, scheduler=None, workers=None, quiet=False):
    """A client of a Dask cluster whose workers hold the `batch.VerifiedModel`: yield (client, plugin name).

    With `scheduler` (an address) the cluster running there; without, a local cluster of `workers`
    worker processes that lives as long as the run.
    """
    with connect(scheduler, workers, quiet) as client:
        plugin = ModelPlugin(verified.files, verified.folder)
        try:
            client.register_plugin(plugin, name=plugin.name)  # raises the first worker's refusal
            yield client, plugin.name
        finally:  # a shared cluster keeps no copy of the model once the run is over, whatever its end
            with suppress(ValueError, OSError):
                client.unregister_worker_plugin(plugin.name)


def in_flight(client):
    """How many tasks to keep submitted: enough that no worker waits while the client takes results."""
    return IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


def score_blocks(client, plugin_name, job, blocks, deliver):
    """Score blocks the client reads, as tasks holding their bytes; `deliver(block, rows, data)` in input order."""
    limit, pending, run = in_flight(client), deque(), uuid.uuid4().hex
    try:
        for block in blocks:
            pending.append((block, client.submit(score_on_worker, plugin_name, job, block,
                                                 key=f"sentiment-block-{run}-{block.number}")))
            while len(pending) >= limit:
                deliver_block(*pending.popleft(), deliver)
        while pending:
            deliver_block(*pending.popleft(), deliver)
    finally:
        client.cancel([future for _, future in pending])


def deliver_block(block, future, deliver):
    """Wait for a block's result and deliver it; a block that kept killing workers is an error."""
    try:
        rows, data = answer(future)
    except KilledWorker:
        raise killed(block.path, f"the block from line {block.first_line}") from None
    deliver(block, rows, data)


def killed(name, where):
    """The error for a task that killed every worker it was given to."""
    return util.DataError(f"{name}: the Dask workers died each time they scored {where}; see the "
                          "workers' logs (often memory: try --block-size).")


def score_cells(client, plugin_name, job, cells, deliver, *, block_size, staging=None):
    """Score `inputs.Cell`s the workers read themselves; `deliver(block, rows, data)` in input order.

    With `staging`, the folder `batch.FolderOutput` is filling, the workers write the parts there and
    data is a `batch.WrittenPart`.
    """
    run = uuid.uuid4().hex  # task keys of this run only, however many runs share the cluster
    counts = [client.submit(count_on_worker, cell, block_size, priority=10, key=f"sentiment-count-{run}-{index}")
              if not job.kaggle and cell.offset is not None else None for index, cell in enumerate(cells)]
    limit, pending, next_line = in_flight(client), deque(), {}
    try:
        for index, (cell, count) in enumerate(zip(cells, counts)):
            first_line = next_line.get(cell.file, 1)
            pending.append((index, first_line, client.submit(
                score_cell_on_worker, plugin_name, job, cell, block_size, first_line, staging,
                key=f"sentiment-cell-{run}-{index}")))
            if count is not None:
                next_line[cell.file] = first_line + answer(count)
            while len(pending) >= limit:
                deliver_cell(client, plugin_name, job, cells, *pending.popleft(), deliver, block_size=block_size)
        while pending:
            deliver_cell(client, plugin_name, job, cells, *pending.popleft(), deliver, block_size=block_size)
    finally:
        client.cancel([future for *_, future in pending] + [count for count in counts if count is not None])


def deliver_cell(client, plugin_name, job, cells, index, first_line, future, deliver, *, block_size):
    """Wait for a cell's result and deliver its blocks. A bad line in a Kaggle file, whose blocks were not
    counted, is found again with its true line number, so that the error names it."""
    cell = cells[index]
    try:
        results = answer(future)
    except KilledWorker:
        where = ("the whole file (one task for a gzip file)" if cell.offset is None else
                 f"the block at byte {cell.offset:,}" if job.kaggle else f"the block from line {first_line}")
        raise killed(cell.name, where) from None
    except util.DataError:
        if not (job.kaggle and cell.offset):
            raise
        earlier = [other for other in cells[:index] if other.file == cell.file]
        counted = [answer(future) for future in client.map(count_on_worker, earlier, block_size=block_size,
                                                            pure=False)]
        answer(client.submit(score_cell_on_worker, plugin_name, job, cell, block_size, 1 + sum(counted), None,
                             pure=False))
        raise  # the same cell counted from its true first line did not fail: the file changed
    for block, rows, data in results:
        deliver(block, rows, data)


@contextmanager
def connect(scheduler, workers, quiet):
    """A client of the cluster at `scheduler`, or of a local cluster of `workers` processes started here.

    Results come straight from the workers (`direct_to_workers`) rather than through the scheduler."""
    if quiet:
        logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler is None:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                          silence_logs=logging.ERROR if quiet else logging.WARNING, env=WORKER_ENVIRONMENT) as local, \
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
        modules = "import batch.blocks, batch.cluster, batch.inputs"
        client.run_on_scheduler(exec, modules)  # exec returns None: nothing to send back
        client.run(exec, modules)
    except ImportError as exc:
        raise ConnectionError(f"the Dask cluster at {scheduler} cannot import this repository's code ({exc}); "
                              "start `dask scheduler` and `dask worker` with the checkout, at the client's commit, "
                              "on PYTHONPATH (docs/batch.md).") from None


def default_workers():
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0))
