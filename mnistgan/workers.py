"""Several digits trained at once, one worker process per core.

At batch 32 a digit's training step is bound by many small operations, so one
process cannot keep two cores busy. Each worker here is a fresh (spawned)
process with TensorFlow's thread pools pinned to its share of the cores; the
workers take jobs (one run of one digit) from a queue until none is left, each
training them exactly as `gan.train_jobs` does in a single process (same seeds,
same files in output/digit-N/, same resume). The parent only hands out work, draws one
progress line for every digit in flight and prints the summary: it never
imports TensorFlow unless it must train the evaluator first.

A run of a digit is the unit of work and carries no process-wide state, so the
same jobs could be handed to the workers of a distributed engine instead.
"""

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import traceback

from absl import logging

from mnistgan import data, environment, generators, locks, outputs, precision
from mnistgan.errors import UserError
from mnistgan.jobs import check_settings, job_locks, mnist_jobs, run_label, runs_left
from mnistgan.progress import ProgressBoard, RelayedProgress
from mnistgan.results import exit_status, print_summary

# Seconds between the parent's looks at whether its workers are still alive.
_POLL_S = 1.0
_PR_SET_PDEATHSIG = 1


def threads_per_worker(workers, cores=None):
    """TensorFlow's threads of each of `workers` workers, e.g. [3, 3, 2] for 8 cores: together they use every core."""
    cores = cores or environment.usable_cores()
    return [max(1, cores // workers + (i < cores % workers)) for i in range(workers)]


def train_digits(config, mnist):
    """Trains `config.digits` in `config.workers` worker processes; prints the summary.

    Args:
      config: the whole `Config`.
      mnist: a `data.Mnist`.

    Returns:
      0 when every digit finished, 1 when any stopped on a non-finite loss.

    Raises:
      UserError: another command training one of these runs in the same folder, a damaged
        file or changed setting of any digit, before any training; or the first refusal of a worker, after which the other
        workers are stopped and every digit resumes from its last checkpoint
        on the next run.
    """
    with locks.holding(job_locks(config)):  # The parent holds them: its workers die with it.
        generators.prepare_training(config)
        check_settings(config)  # A changed flag is refused before any process starts TensorFlow.
        config = precision.decided(config, config.gan.precision)  # Once, here: the workers take the verdict.
        jobs = mnist_jobs(config, mnist)
        workers = max(1, min(config.workers, runs_left(config)))  # A worker with nothing to train leaves its cores idle.
        results = _train_in_pool(config, mnist, jobs, workers, threads_per_worker(workers))
        ordered = [results[digit, run] for digit, run, *_ in jobs]
        generators.record_training(config.output_dir, ordered)
    print_summary(ordered)
    return exit_status(ordered)


def train_evaluator_if_missing(config, mnist):
    """Trains the evaluator here, once, when the runs select by quality and the output folder has none yet.

    Only then does this process import TensorFlow; the runs load the evaluator it saved.
    """
    if config.gan.uses_evaluator and not all(map(os.path.exists, outputs.evaluator_files(config.output_dir))):
        environment.import_tensorflow_quietly()
        from mnistgan import evaluation  # Deferred: imports TensorFlow, needed only this once.

        evaluation.load_or_train_evaluator(config.output_dir, mnist, seed=config.seed)


def check_digits_apart(config):
    """Refuses a damaged file (or changed setting) of any digit before any digit trains.

    gan.check_digits runs in a short-lived process, so this one stays free of TensorFlow.
    The Ray driver uses it; local workers have the first of them check (`_train_in_pool`).
    """
    # Ctrl-C is the parent's to handle, as for the workers.
    with multiprocessing.get_context("spawn").Pool(1, signal.signal, (signal.SIGINT, signal.SIG_IGN)) as pool:
        refusal = pool.apply(_refusal, (config, logging.get_verbosity()))
    if refusal:
        raise UserError(refusal)


def _refusal(config, verbosity):
    """The message of gan.check_digits' refusal, or None."""
    environment.use_absl_log_format(verbosity)
    environment.quiet_library_logs()
    environment.import_tensorflow_quietly()
    from mnistgan import gan

    try:
        gan.check_digits(config)
    except UserError as e:
        return str(e)
    return None


def _train_in_pool(config, mnist, jobs, workers, threads):
    """Runs the jobs in `workers` processes, worker i with threads[i] threads; returns {(digit, run): DigitResult}.

    The first worker reads every digit's files back (gan.check_digits) as soon as it has
    TensorFlow, so this process stays free of it without starting one more process for the
    check. Only once they pass is the evaluator trained (when missing) and are jobs handed out.
    """
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe.
    tasks, events = context.Queue(), context.Queue()
    processes = [
        context.Process(
            target=_worker_main,
            args=(config, threads[i], logging.get_verbosity(), os.getpid(), tasks, events, i),
            name=f"mnistgan-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    runs = config.gan.runs_per_digit
    what = f"{len(jobs) // runs} digit(s)" + (f", {runs} runs each" if runs > 1 else "")
    for process in processes:
        process.start()
    results = {}
    try:
        _wait_for_check(events, processes, jobs)
        train_evaluator_if_missing(config, mnist)
        for job in jobs:
            tasks.put(job)
        for _ in range(workers):
            tasks.put(None)  # One stop sign per worker.
        shares = "/".join(map(str, sorted(set(threads), reverse=True)))
        logging.info("training %s in %d worker processes (%s thread(s) each)", what, workers, shares)
        board = ProgressBoard(len(jobs), config.gan.steps)
        while len(results) < len(jobs):
            try:
                _handle(events.get(timeout=_POLL_S), board, results)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes) or not any(p.is_alive() for p in processes):
                    _drain(events, board, results)  # What a worker sent just before it ended.
                    _check_finished(processes, set((d, r) for d, r, *_ in jobs) - set(results))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # A kill leaves every file whole; the digit resumes next time.
            process.join()
    return results


def _wait_for_check(events, processes, jobs):
    """Waits for the first worker's gan.check_digits; raises its refusal, as `check_digits_apart` does."""
    while True:
        try:
            event = events.get(timeout=_POLL_S)
        except queue.Empty:
            if any(p.exitcode is not None for p in processes):
                try:
                    event = events.get(timeout=_POLL_S)  # What a worker sent just before it ended.
                except queue.Empty:
                    _check_finished(processes, set((d, r) for d, r, *_ in jobs))
                    continue
            else:
                continue
        kind, _, payload = event
        if kind == "checked":
            return
        if kind == "crashed":
            raise RuntimeError(f"the worker checking the digits' files failed:\n{payload}")
        _handle(event, None, {})  # Before any job, only a refusal.


def _handle(event, board, results):
    kind, key, payload = event  # key: the job's (digit, run).
    if kind == "progress":
        board.update(run_label(*key), *payload)
    elif kind == "message":
        board.message(payload)
    elif kind == "result":
        board.finish(run_label(*key))
        results[key] = payload
    elif kind == "refused":
        raise UserError(payload)
    else:  # "crashed": a bug, not bad input; show where.
        raise RuntimeError(f"the worker training {run_label(*key) if key else 'its first digit'} failed:\n{payload}")


def _drain(events, board, results):
    while True:
        try:
            _handle(events.get(timeout=_POLL_S), board, results)
        except queue.Empty:
            return


def _check_finished(processes, unfinished):
    """Raises when workers have ended (a crash, the OOM killer) with (digit, run) jobs still unfinished."""
    if unfinished:
        codes = ", ".join(str(p.exitcode) for p in processes if p.exitcode not in (None, 0)) or "0"
        listed = ",".join(map(str, sorted(set(digit for digit, _ in unfinished))))
        raise UserError(
            f"a worker process ended (exit code {codes}) before digit(s) {listed} finished; "
            "run the same command again to resume them"
        )


def _die_with_parent(parent_pid):
    """Ends this worker when its parent dies, even by SIGKILL (Linux), so no orphan keeps writing."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # The parent died before the line above took effect.
        os._exit(1)


def _worker_main(config, threads, verbosity, parent_pid, tasks, events, index):
    """Worker `index`: pins its threads, then trains (digit, run) jobs from `tasks` until a stop sign."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle.
    environment.use_absl_log_format(verbosity)
    environment.quiet_library_logs()
    environment.import_tensorflow_quietly()  # Only now: the thread pools are fixed when TensorFlow starts.
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from mnistgan import gan

    if index == 0:
        try:
            gan.check_digits(config)
        except UserError as e:
            events.put(("refused", None, str(e)))
            return
        except Exception:  # A bug, not bad input: the parent shows where.
            events.put(("crashed", None, traceback.format_exc()))
            return
        events.put(("checked", None, None))
    first = tasks.get()  # The parent hands out jobs once the check passed and the evaluator exists.
    evaluator = None
    if config.gan.uses_evaluator and first is not None:
        from mnistgan import evaluation

        evaluator = evaluation.load_or_train_evaluator(config.output_dir, mnist=None, announce=index == 0)
    current = [None]

    def jobs():
        job = first
        while job is not None:
            current[0] = job[:2]
            yield job
            job = tasks.get()

    def progress(label, start, total):
        return RelayedProgress(events.put, current[0], label, start, total)

    try:
        for result in gan.train_jobs(config, jobs(), evaluator, progress):
            events.put(("result", result.key, result))
    except UserError as e:
        events.put(("refused", current[0], str(e)))
    except Exception as e:  # Reported to the parent: a full disk as a refusal, anything else with the traceback.
        refusal = outputs.out_of_space(e, config.output_dir)
        events.put(("refused", current[0], str(refusal)) if refusal else ("crashed", current[0], traceback.format_exc()))
