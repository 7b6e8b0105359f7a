"""Several digits trained at once in worker processes."""

import contextlib
import dataclasses
import io
import json
import os
import queue
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnistgan import data, outputs, workers
from mnistgan.errors import UserError
from mnistgan.progress import ProgressBoard
from tests.conftest import MAIN, TINY_WIDTH_FLAGS, blob_images, run_main, tiny_config


def two_digit_mnist():
    """A `data.Mnist` whose digits 3 and 5 are blobs of different sizes."""
    labels = np.repeat([3, 5], 48)
    images = np.concatenate([blob_images(48, seed=3), blob_images(48, seed=5) // 2])
    return data.split(images, labels, images, labels, validation_size=32)


def generator_weights(output_dir, digit, run=1):
    import keras

    return keras.models.load_model(outputs.generator_path(output_dir, digit, run)).get_weights()


def trained_generator(output_dir, digit):
    """(trainable weights, 16 images from fixed noise) of a digit's generator.keras."""
    import keras

    generator = keras.models.load_model(outputs.generator_path(output_dir, digit))
    z = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    return [w.numpy() for w in generator.trainable_weights], generator(z, training=False).numpy()


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory):
    """Two runs each of digits 3 and 5, trained by two worker processes: (config, the summary it printed).

    One pool of workers (each starts TensorFlow) for both tests below.
    """
    # float32, so that only the order of float sums may differ (one thread per worker, two in one process).
    config = tiny_config(tmp_path_factory.mktemp("parallel"), eval_every=0, snapshots=1, runs_per_digit=2, precision="float32")
    config = dataclasses.replace(config, digits=(3, 5), workers=2)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert workers.train_digits(config, two_digit_mnist()) == 0
    return config, out.getvalue()


def test_two_workers_write_every_file_and_train_as_one_process_does(tmp_path, parallel_run):
    from mnistgan import gan

    parallel, summary = parallel_run
    sequential = dataclasses.replace(parallel, output_dir=str(tmp_path / "sequential"), workers=1)
    assert gan.train_digits(sequential, two_digit_mnist()) == 0
    for digit in (3, 5):
        folder = outputs.digit_dir(parallel.output_dir, digit)
        for name in ("generator.keras", "evolution.png", "metrics.csv", "run.json"):
            assert os.path.getsize(os.path.join(folder, name)) > 0, name
        assert f"{digit} | done   |      4" in summary
        record = json.load(open(os.path.join(folder, "run.json")))
        assert record["steps_done"] == 4 and record["seed"] == 0
        (weights_a, images_a), (weights_b, images_b) = (trained_generator(c.output_dir, digit) for c in (parallel, sequential))
        for a, b in zip(weights_a, weights_b):
            # Adam turns a rounding difference in a near-zero gradient into up to a full step (2e-4) per step.
            np.testing.assert_allclose(a, b, rtol=0, atol=4 * 2e-4)
        assert np.abs(images_a - images_b).mean() < 2e-3
    three, five = generator_weights(parallel.output_dir, 3), generator_weights(parallel.output_dir, 5)
    assert any(not np.allclose(a, b) for a, b in zip(three, five))  # Each digit trained on its own data and seed.


def test_two_workers_train_the_runs_of_a_digit_side_by_side_each_in_its_own_folder(parallel_run):
    from mnistgan import generators

    config, summary = parallel_run
    assert "      3 | done   |      4" in summary and "3 run 2 | done   |      4" in summary
    first, second = outputs.digit_dir(config.output_dir, 3), outputs.digit_dir(config.output_dir, 3, run=2)
    assert second == os.path.join(first, "run-2")
    for folder in (first, second):
        for name in ("generator.keras", "evolution.png", "metrics.csv", "run.json", "samples", "checkpoints", "snapshots"):
            assert os.path.exists(os.path.join(folder, name)), (folder, name)
    assert json.load(open(os.path.join(second, "run.json")))["run"] == 2
    # Each run has its own seed: two different generators of the same digit.
    assert any(not np.allclose(a, b) for a, b in zip(*(generator_weights(config.output_dir, 3, run) for run in (1, 2))))
    # The parent lists both runs' snapshots in the manifest, which the classifier's stream reads.
    manifest = generators.read_manifest(config.output_dir)
    assert [(e.path, e.run) for e in manifest[3].snapshots] == [
        (os.path.join("digit-3", "snapshots", "step-000004.keras"), 1),
        (os.path.join("digit-3", "run-2", "snapshots", "step-000004.keras"), 2),
    ]
    assert manifest[3].generator.path == os.path.join("digit-3", "generator.keras")
    samplers = generators.snapshot_samplers(config.output_dir, digits=(3,))
    run_ids = {json.load(open(os.path.join(folder, "run.json")))["run_id"] for folder in (first, second)}
    assert set(generators.run_ids(samplers, digits=(3,))) == {"3", "3/run-2"}
    assert set(generators.run_ids(samplers, digits=(3,)).values()) == run_ids


def child_pids(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_a_parallel_run_killed_mid_training_leaves_no_worker_and_resumes(tmp_path, real_mnist_dir):
    common = ["--train-digits", "3,5", "--workers", "2", "--batch-size", "8", "--sample-every", "10",
              "--checkpoint-every", "10", "--eval-every", "0", "--runs-per-digit", "1", *TINY_WIDTH_FLAGS,
              "--mnist-dir", real_mnist_dir, "--output-dir", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen([sys.executable, MAIN, *common, "--steps", "5000"], stderr=subprocess.DEVNULL)
    marks = [tmp_path / f"digit-{d}" / "run.json" for d in (3, 5)]  # Written after the first checkpoint.
    deadline = time.monotonic() + 180
    while not all(mark.exists() for mark in marks):
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoints appeared"
        time.sleep(0.2)
    pids = child_pids(process.pid)
    assert len(pids) >= 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") and "Z" not in open(f"/proc/{pid}/stat").read().split()[2] for pid in pids):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.1)
    done = {d: json.loads((tmp_path / f"digit-{d}" / "run.json").read_text())["steps_done"] for d in (3, 5)}
    target = max(done.values()) + 20
    result = run_main(*common, "--steps", str(target))
    assert result.returncode == 0, result.stderr
    for digit in (3, 5):
        assert f"{digit} | done   | {target:>6}" in result.stdout
        steps = outputs.MetricsCsv(str(tmp_path / f"digit-{digit}" / "metrics.csv"), ()).steps()
        assert steps == sorted(set(steps)) and steps[0] == 10 and steps[-1] == target  # Resumed, not restarted.
    refused = run_main(*common, "--steps", str(target + 10), "--batch-size", "16")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "batch_size 8 -> 16" in refused.stderr.strip().splitlines()[-1]


def test_the_board_shows_every_digit_in_flight_and_an_eta():
    board = ProgressBoard(total_runs=4, steps_per_run=100, stream=io.StringIO())
    board.update("digit 3", 50, 100, 10.0)
    board.update("digit 5", 20, 100, 10.0)
    board.finish("digit 1")
    line = board.line()
    assert "digit 3 50/100 10.0/s" in line and "digit 5 20/100 10.0/s" in line and "1/4 done" in line
    assert line.endswith("ETA 0:11")  # (50 + 80 + 100 waiting) steps at 20 steps/s.


class _Ended:
    """Stands for a worker process that has ended with `exitcode`."""

    def __init__(self, exitcode):
        self.exitcode = exitcode


def _events(*sent):
    events = queue.Queue()
    for event in sent:
        events.put(event)
    return events


def test_the_first_workers_check_passes_refuses_in_one_line_or_shows_a_crash(monkeypatch):
    monkeypatch.setattr(workers, "_POLL_S", 0.01)
    jobs = [(3, 1), (5, 1)]
    running = [_Ended(None)]
    workers._wait_for_check(_events(("checked", None, None)), running, jobs)  # Returns: jobs may go out.
    with pytest.raises(UserError, match="^digit 3: damaged generator.keras$"):
        workers._wait_for_check(_events(("refused", None, "digit 3: damaged generator.keras")), running, jobs)
    with pytest.raises(RuntimeError, match="the worker checking the digits' files failed:\nTraceback"):
        workers._wait_for_check(_events(("crashed", None, "Traceback (most recent call last): ...")), running, jobs)
    # A worker killed before it said anything (the OOM killer): one line naming the digits.
    with pytest.raises(UserError, match=r"exit code -9\) before digit\(s\) 3,5 finished; run the same command again"):
        workers._wait_for_check(_events(), [_Ended(-9)], jobs)


def test_the_workers_threads_add_up_to_the_cores():
    assert workers.threads_per_worker(2, cores=2) == [1, 1]
    assert workers.threads_per_worker(3, cores=8) == [3, 3, 2]
    assert workers.threads_per_worker(1, cores=8) == [8]
    assert workers.threads_per_worker(4, cores=2) == [1, 1, 1, 1]  # More workers than cores: one thread each.


def test_runs_already_trained_take_no_worker(tmp_path):
    from mnistgan import jobs

    config = dataclasses.replace(tiny_config(tmp_path, runs_per_digit=2), digits=(3, 4))
    assert jobs.runs_left(config) == 4
    for digit in (3, 4):  # Run 1 of both digits is done.
        outputs.write_json(outputs.training_files(outputs.digit_dir(config.output_dir, digit)).record, {"status": "done", "steps_done": 4})
        open(outputs.generator_path(config.output_dir, digit), "wb").close()
    assert jobs.runs_left(config) == 2
    assert jobs.runs_left(dataclasses.replace(config, restart=True)) == 4
