"""Digit runs on a Ray cluster (`--engine ray`): the local workers' jobs, handed to Ray core tasks.

Every node mounts the same output folder at the same path and runs the same
checkout with the same requirements (README: On a cluster). The driver, this
process, does what must happen once: it holds the runs' locks, applies
--restart (a retried task must never wipe its own checkpoints), checks every
file, trains the evaluator if it is missing, and proves that each live node
sees the output folder it writes (a token file) and runs the same mnistgan
source and libraries. Then it submits one task per (digit, run) job; the
images travel through Ray's object store, so nodes need no MNIST copy.

A task gets a fresh worker process (`max_calls=1`) that pins TensorFlow's
threads to the CPUs it reserved before TensorFlow starts, claims its run's
folder (ownership.py) and trains as a local worker does, resuming from the
last checkpoint in the shared folder. Ray runs a task again when its worker
or node dies (`max_retries`), so a node lost costs at most --checkpoint-every
steps. A refusal (`UserError`) or a bug is not retried: the driver cancels the
other tasks and says to run the same command again, which resumes them.

Ray is optional (requirements-ray.txt); this module imports it only when used.
"""

import contextlib
import dataclasses
import hashlib
import logging as python_logging
import os
import socket
import traceback

from absl import logging

from mnistgan import data, generators, locks, outputs, precision
from mnistgan.errors import UserError
from mnistgan.jobs import check_settings, job_locks, mnist_jobs, run_label, units_of
from mnistgan.progress import ProgressBoard, RelayedProgress
from mnistgan.results import exit_status, print_summary

INSTALL = "--engine ray needs Ray, which is not installed here: make setup ENGINE=ray (or .venv/bin/pip install -r requirements-ray.txt)"
# Attempts of a task after the first when its worker or node dies.
MAX_RETRIES = 3
# Seconds the driver waits for every node's pre-flight check.
PREFLIGHT_TIMEOUT_S = 120
# Seconds between the driver's looks at its tasks and their progress.
_POLL_S = 1.0
TOKEN_FILE = os.path.join(".cluster", "token")


def import_ray():
    """The `ray` module; a `UserError` saying how to install it when it is missing."""
    try:
        import ray  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(INSTALL) from e
    return ray


def source_digest():
    """A digest of this mnistgan's source files: two nodes with the same digest run the same code."""
    package = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in sorted(n for n in os.listdir(package) if n.endswith(".py")):
        with open(os.path.join(package, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def node_identity(output_dir):
    """What a node proves in the pre-flight: its name, the token it reads in `output_dir`, its code and libraries."""
    path = os.path.join(output_dir, TOKEN_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError:
        token = None
    return {"host": socket.gethostname(), "token": token, "source": source_digest(), "versions": outputs.library_versions()}


def _unreachable(address, timeout_s):
    """Why nothing answers at HOST:PORT (the connection's error), or None when something does."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except ValueError:  # A port that is no number: an address file edited or cut short.
        return "not HOST:PORT"
    except OSError as e:
        return e.strerror or str(e)
    return None


def check_reachable(address, timeout_s=5.0):
    """Refuses a HOST:PORT where nothing answers, or "auto" led to one by a stale address file, in seconds
    (Ray itself would retry for minutes)."""
    if address == "auto":
        check_address_file(timeout_s)
        return
    why = _unreachable(address, timeout_s) if address else None  # "": an instance of our own, started here.
    if why:
        raise UserError(
            f"--engine ray: cannot reach the Ray cluster at {address} ({why}); start its head with "
            "ray start --head --port=6379, or check --address"
        )


def check_address_file(timeout_s=5.0):
    """Refuses `--address auto` when Ray would take it to a HOST:PORT in its address file where nothing answers.

    `ray start` writes that file (`ray_current_cluster` in Ray's temporary folder) and only `ray stop` removes
    it, so it outlives an instance that was killed or a machine that restarted. Ray's own rule picks the
    address (RAY_ADDRESS, else a single Ray instance running here, else the file); without any, `ray.init`
    says so in one line itself.
    """
    from ray._common.utils import get_ray_address_file  # pylint: disable=import-outside-toplevel
    from ray._private import services, utils  # pylint: disable=import-outside-toplevel

    try:
        found = services.get_ray_address_from_environment("auto", None)
    except ConnectionError:
        return
    why = _unreachable(found, timeout_s) if found == utils.read_ray_address(None) else None
    if why:
        raise UserError(
            f"--engine ray --address auto: Ray's address file {get_ray_address_file(None)} names {found or 'no address'}, where nothing "
            f"answers ({why}): a Ray instance that has stopped; delete that file (ray stop does, and stops every Ray "
            "process of this machine), or drop --address to start a Ray instance of this command's own"
        )


@contextlib.contextmanager
def connected(address):
    """Ray, connected to the cluster at `address`, or to an instance of this machine's own ("": started and
    stopped here, on success, error, Ctrl-C or SIGTERM). Raises a `UserError` for a cluster that cannot be
    reached."""
    ray = import_ray()
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    options = dict(
        include_dashboard=False,
        logging_level=python_logging.WARNING,
        log_to_driver=True,
        # Workers import mnistgan from the same checkout (every node has it at the same path).
        job_config=ray.job_config.JobConfig(code_search_path=[project]),
    )
    token_at_hand = any(map(os.environ.get, ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"))) or os.path.exists(os.path.expanduser("~/.ray/auth_token"))
    if address and token_at_hand:
        # Ray's `ray start --head` turns token authentication on by default; its drivers must ask for it.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # "local": a new instance whatever else is here. Without an address Ray would join what RAY_ADDRESS
            # or its address file names, and that file outlives the instance that wrote it (issue 47).
            ray.init(address="local", num_cpus=os.cpu_count(), **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a Ray instance on this machine"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "authentication" in repr(e.__cause__).lower():
            first_line = "its token authentication refused this process; give it the cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        raise UserError(f"--engine ray: cannot connect to {where}: {first_line}") from e
    try:
        yield ray
    finally:
        # Disconnects; an instance of our own stops with it, before the command ends (a driver of a cluster has no
        # processes here to wait for).
        ray.shutdown(wait_for_processes=True)


def _alive_nodes(ray):
    """The live nodes with CPUs, as (node id, address, CPUs)."""
    return [
        (node["NodeID"], node.get("NodeManagerAddress", "?"), int(node["Resources"].get("CPU", 0)))
        for node in ray.nodes()
        if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) >= 1
    ]


def preflight(ray, output_dir, token):
    """Runs `node_identity` on every live node with CPUs; refuses a node that differs from this one.

    Returns:
      The live nodes, as `_alive_nodes` lists them.

    Raises:
      UserError: one line naming the first node that does not see `output_dir` (its token), runs other code or
        libraries, or does not answer; or a cluster without CPUs.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # pylint: disable=import-outside-toplevel

    nodes = _alive_nodes(ray)
    if not nodes:
        raise UserError("--engine ray: the cluster has no live node with a CPU to train on; start one with ray start --address=HEAD:6379")
    check = ray.remote(num_cpus=0, max_retries=0)(node_identity)
    refs = {
        check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(output_dir): (node_id, address)
        for node_id, address, _ in nodes
    }
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=PREFLIGHT_TIMEOUT_S)
    if late:
        node_id, address = refs[late[0]]
        raise UserError(f"--engine ray: node {address} ({node_id[:8]}) did not answer the pre-flight check within {PREFLIGHT_TIMEOUT_S} s")
    here = node_identity(output_dir)
    for ref in ready:
        node_id, address = refs[ref]
        seen = ray.get(ref)
        name = f"node {address} ({seen['host']}, {node_id[:8]})"
        if seen["token"] != token:
            raise UserError(
                f"--engine ray: {name} does not see the output folder {output_dir} (its token file is "
                f"{'missing' if seen['token'] is None else 'another'}); every node must mount the same shared folder at the same path"
            )
        if seen["source"] != here["source"]:
            raise UserError(f"--engine ray: {name} runs other mnistgan code ({seen['source']}, here {here['source']}); give every node the same checkout")
        if seen["versions"] != here["versions"]:
            differ = sorted(k for k in here["versions"] if seen["versions"].get(k) != here["versions"][k])
            raise UserError(f"--engine ray: {name} has other library versions ({', '.join(differ)}); install requirements.txt on every node")
    return nodes


def _sender(events):
    """Puts an event on the driver's queue without waiting for it.

    Never `ray.get` here: while a task waits on one, Ray lends its CPU to another task, and two
    runs would share one core. A line lost with a dying queue is not worth stopping the run for.
    """

    def send(event):
        events.actor.put_nowait.remote(event)

    return send


def train_job(config, job, threads, events, verbosity, *earlier):
    """One (unit, run) job in a fresh Ray worker process; returns its `DigitResult`.

    Args:
      job: (unit, run, train, validation, negatives), as `jobs.jobs_of` makes it.
      threads: TensorFlow threads, the CPUs the task reserved.
      events: the driver's `ray.util.queue.Queue` for progress lines.
      earlier: results of runs this one must wait for (coverage-targeted runs); Ray resolves them first.
    """
    del earlier
    from mnistgan import environment, ownership  # pylint: disable=import-outside-toplevel

    environment.use_absl_log_format(verbosity)
    environment.quiet_library_logs()
    environment.import_tensorflow_quietly()  # Only now: the thread pools are fixed when TensorFlow starts.
    import ray  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from mnistgan import evaluation, gan  # pylint: disable=import-outside-toplevel

    if config.gan.precision == precision.AUTO:  # What auto stands for on this node's own processor (cached per machine).
        config = dataclasses.replace(config, machine_precision=precision.resolve(precision.AUTO).policy)
    evaluator = evaluation.load_or_train_evaluator(config.output_dir, mnist=None, announce=False) if config.gan.uses_evaluator else None
    node = f"{socket.gethostname()} {ray.get_runtime_context().get_node_id()[:8]}"
    attempt = ownership.Attempt(node)

    def progress(label, start, total):
        return RelayedProgress(_sender(events), tuple(job[:2]), label, start, total)

    return next(gan.train_jobs(config, [job], evaluator, progress, attempt))


def _restart(config):
    """Applies --restart here, before any task exists; returns the config the tasks get (restart off)."""
    if not config.restart:
        return config
    for unit in units_of(config):
        for run in range(1, config.gan.runs_per_digit + 1):
            outputs.clear_digit_dir(config.output_dir, unit, run)
    return dataclasses.replace(config, restart=False)


def _write_token(output_dir):
    token = os.urandom(16).hex()
    outputs.write_text(os.path.join(output_dir, TOKEN_FILE), token)
    return token


def train_digits(config, mnist):
    """Trains `config.digits` as Ray tasks on the cluster at `config.address`; prints the summary.

    Returns:
      0 when every run finished, 1 when any stopped on a non-finite loss.

    Raises:
      UserError: Ray missing, a cluster that cannot be reached or a node that fails the pre-flight, another
        command training one of these runs, a damaged file; or a task's refusal, after which the other tasks are
        cancelled and the same command resumes them.
    """
    import_ray()  # Before any work: without Ray, say how to install it; a cluster that is not there, say so.
    check_reachable(config.address)
    from mnistgan import workers  # pylint: disable=import-outside-toplevel

    with locks.holding(job_locks(config)):
        generators.prepare_training(config)
        check_settings(config)  # A changed flag is refused before any process starts TensorFlow.
        # Says what this machine chooses; each task decides "auto" again on its own node (train_job).
        precision.decided(config, config.gan.precision)
        config = _restart(config)
        workers.check_digits_apart(config)
        workers.train_evaluator_if_missing(config, mnist)
        jobs = mnist_jobs(config, mnist)
        token = _write_token(config.output_dir)
        with connected(config.address) as ray:
            nodes = preflight(ray, config.output_dir, token)
            logging.info("training %d run(s) on a Ray cluster of %d node(s) with %d CPU(s)", len(jobs), len(nodes), sum(c for *_, c in nodes))
            results = _run(ray, config, jobs, max(c for *_, c in nodes))
        ordered = [results[unit, run] for unit, run, *_ in jobs]
        generators.record_training(config.output_dir, ordered)
    print_summary(ordered)
    return exit_status(ordered)


def _run(ray, config, jobs, largest_node_cpus):
    """Submits the jobs and follows them to the end; returns {(unit, run): DigitResult}."""
    from ray.util.queue import Empty, Queue  # pylint: disable=import-outside-toplevel
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # pylint: disable=import-outside-toplevel

    # A conditional family's one network takes a whole node, as it takes the whole machine locally.
    cpus = largest_node_cpus if isinstance(jobs[0][0], str) else 1
    task = ray.remote(num_cpus=cpus, max_calls=1, max_retries=MAX_RETRIES, retry_exceptions=False)(train_job)

    # The progress queue lives on the driver's own node: a worker node may die.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    events = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
    verbosity = logging.get_verbosity()
    pending, by_unit = {}, {}
    for job in jobs:
        unit, run = job[:2]
        # A coverage-targeted run reads its unit's earlier runs: it starts once they have ended.
        earlier = by_unit.get(unit, []) if config.gan.coverage_focus > 0 else []
        ref = task.remote(config, job, cpus, events, verbosity, *earlier)
        by_unit.setdefault(unit, []).append(ref)
        pending[ref] = (unit, run)
    board = ProgressBoard(len(jobs), config.gan.steps)
    results = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
            while True:
                try:
                    kind, key, payload = events.get_nowait()
                except (Empty, ray.exceptions.RayError):  # Progress lines are not worth failing the runs for.
                    break
                if kind == "progress":
                    board.update(run_label(*key), *payload)
                else:
                    board.message(payload)
            for ref in ready:
                key = pending.pop(ref)
                results[key] = _result(ray, ref, key, config.output_dir)
                board.finish(run_label(*key))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)  # A killed task leaves every file whole; it resumes next time.
        with contextlib.suppress(Exception):
            ray.kill(events.actor)
    return results


def _result(ray, ref, key, output_dir):
    """The task's `DigitResult`; a refusal, a bug or a task that ran out of retries as one line saying how to resume."""
    resume = "the other runs were stopped; run the same command again to resume them"
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, UserError):
            raise UserError(f"{cause}; {resume}") from None
        refusal = outputs.out_of_space(cause, output_dir) if isinstance(cause, Exception) else None
        if refusal:
            raise UserError(f"{refusal}; {resume}") from None
        logging.error("the task training %s failed:\n%s", run_label(*key), "".join(traceback.format_exception(cause)) if cause else e)
        raise UserError(f"the task training {run_label(*key)} failed (a bug: its traceback is above); {resume}") from None
    except ray.exceptions.RayError as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"the task training {run_label(*key)} did not finish in {MAX_RETRIES + 1} attempts ({first_line}); {resume}") from None
