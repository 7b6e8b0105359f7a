"""Faults a user meets: a second command on a folder in use, a full disk, and help asked for."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from mnistgan import config as config_lib, jobs, locks, outputs
from mnistgan.errors import UserError
from tests.conftest import MAIN, REAL_MNIST_DIR, ROOT, TINY_WIDTH_FLAGS, outcomes_before_tensorflow, run_main


def one_line_refusal(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("main.py: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], result.stderr
    return lines[-1]


@pytest.mark.parametrize("flag", ["--help", "--helpfull"])
def test_help_asked_for_is_a_success(flag):
    result = run_main(flag)
    assert result.returncode == 0 and "--train-digits" in result.stdout, result.stderr


# ---- one writer per output folder ----


def test_a_lock_refuses_a_second_holder_names_the_first_and_is_free_again_after(tmp_path):
    first = locks.Lock(str(tmp_path), "digit-3", "digit 3").acquire()
    assert locks.is_held(str(tmp_path), "digit-3")
    with pytest.raises(UserError, match=rf"digit 3 in {tmp_path} is being trained by process {os.getpid()} on host"):
        locks.Lock(str(tmp_path), "digit-3", "digit 3").acquire()
    locks.Lock(str(tmp_path), "digit-5", "digit 5").acquire().release()  # Another piece of work is free.
    first.release()
    assert not locks.is_held(str(tmp_path), "digit-3")
    locks.Lock(str(tmp_path), "digit-3", "digit 3").acquire().release()


def test_a_lock_left_by_a_process_that_ended_is_taken_over_with_a_notice(tmp_path, caplog):
    path = outputs.lock_path(str(tmp_path), "digit-3")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:  # What a killed holder leaves: its text, but no flock (the OS dropped it).
        json.dump({"pid": 999999, "host": "gone", "command": "main.py --train-digits 3", "started": "2026-12-02 10:00:00"}, f)
    lock = locks.Lock(str(tmp_path), "digit-3", "digit 3").acquire()
    assert "taking over the lock left by process 999999 on host gone" in caplog.text
    lock.release()
    assert open(path).read() == ""  # A clean end leaves nothing to take over.


def wait_for(predicate, process, seconds=180):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None and time.monotonic() < deadline, "the first command ended or stalled"
        time.sleep(0.2)


def test_a_second_command_on_a_digit_in_training_is_refused_and_a_killed_ones_lock_taken_over(tmp_path, real_mnist_dir):
    # One run per digit: the default's coverage-targeted run 2 would first train the evaluator (minutes).
    common = ["--batch-size", "8", "--sample-every", "10", "--checkpoint-every", "10", "--eval-every", "0",
              "--runs-per-digit", "1", "--workers", "1", "--mnist-dir", real_mnist_dir, "--output-dir", str(tmp_path),
              *TINY_WIDTH_FLAGS]  # fmt: skip
    first = subprocess.Popen([sys.executable, MAIN, "--train-digits", "3", "--steps", "5000", *common], stderr=subprocess.DEVNULL)
    try:
        checkpoint_state = tmp_path / "digit-3" / "checkpoints" / "checkpoint"
        wait_for(checkpoint_state.exists, first)
        # Frozen mid-training: it still holds the lock (a flock), but takes no CPU from the second command.
        first.send_signal(signal.SIGSTOP)
        second = run_main("--train-digits", "3,4", "--steps", "20", *common)
        one_line_refusal(second, "digit 3 in", f"is being trained by process {first.pid} on host", "--train-digits 3")
        assert not (tmp_path / "digit-4").exists()  # Refused before any work.
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    third = run_main("--train-digits", "3", "--steps", "20", *common)
    assert third.returncode == 0, third.stderr
    assert f"taking over the lock left by process {first.pid}" in third.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_digit_in_training_is_refused_before_tensorflow_starts(tmp_path, real_mnist_dir, workers):
    """In one process (--workers 1) as with worker processes: a refusal at once, not after seconds of start-up."""
    held = locks.Lock(str(tmp_path), locks.digit_lock_name(4), "digit 4").acquire()  # As a command training digit 4 holds it.
    try:
        (refusal,), imported = outcomes_before_tensorflow(
            ["--train-digits", "3,4", "--workers", workers, "--runs-per-digit", "1", "--output-dir", str(tmp_path), "--mnist-dir", real_mnist_dir]
        )
    finally:
        held.release()
    assert not imported
    assert f"digit 4 in {tmp_path} is being trained by process {os.getpid()}" in refusal, refusal
    assert not (tmp_path / "digit-3").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_changed_setting_is_refused_before_tensorflow_starts(tmp_path, real_mnist_dir, workers):
    record = outputs.training_files(outputs.digit_dir(str(tmp_path), 3)).record
    os.makedirs(os.path.dirname(record))
    outputs.write_json(record, {"config": dataclasses.asdict(config_lib.GanConfig(batch_size=8)), "seed": 0, "wall_time_s": 1.0})
    (refusal,), imported = outcomes_before_tensorflow(
        ["--train-digits", "3,4", "--workers", workers, "--runs-per-digit", "1", "--output-dir", str(tmp_path), "--mnist-dir", real_mnist_dir]
    )  # Two digits: with --workers 2, the parent of worker processes refuses before it starts them.
    assert not imported
    assert f"{tmp_path}/digit-3 was trained with other settings (" in refusal and "batch_size 8 -> 32" in refusal, refusal
    assert "--restart" in refusal and os.listdir(tmp_path / "digit-3") == ["run.json"] and not (tmp_path / "digit-4").exists()


def test_a_setting_of_later_runs_only_leaves_run_1_resumable(tmp_path):
    """Coverage focus changes what run 2 draws, not run 1: a folder of independent runs keeps its run 1."""
    independent = dataclasses.replace(config_lib.PRESETS["default"][0], coverage_focus=0.0)
    for run in (1, 2):
        record = outputs.training_files(outputs.digit_dir(str(tmp_path), 3, run)).record
        os.makedirs(os.path.dirname(record), exist_ok=True)
        outputs.write_json(record, {"config": dataclasses.asdict(independent), "seed": 0, "wall_time_s": 1.0})
    config = config_lib.Config(action="train-digits", digits=(3,), output_dir=str(tmp_path), gan=config_lib.PRESETS["default"][0])
    assert config.gan.coverage_focus == 2.0
    with pytest.raises(UserError, match=r"digit-3/run-2 was trained with other settings \(coverage_focus 0.0 -> 2.0\)"):
        jobs.check_settings(config)
    shutil.rmtree(outputs.digit_dir(str(tmp_path), 3, 2))
    jobs.check_settings(config)  # Run 1 alone: no refusal.
    with pytest.raises(UserError, match=r"digit-3 was trained with other settings \(d_learning_rate"):
        jobs.check_settings(dataclasses.replace(config, gan=dataclasses.replace(config.gan, d_learning_rate=1e-4)))


def test_a_conditional_networks_damaged_record_names_the_digits_it_trains(tmp_path):
    record = outputs.training_files(outputs.digit_dir(str(tmp_path), "cdcgan")).record
    os.makedirs(os.path.dirname(record))
    with open(record, "w") as f:
        f.write('{"config": ')
    config = config_lib.Config(action="train-digits", digits=(3, 5), output_dir=str(tmp_path), gan=config_lib.GanConfig(family="cdcgan"))
    with pytest.raises(UserError, match=r"cdcgan/run.json .*start the cdcgan network over: ./main.py --train-digits 3,5 --family cdcgan --restart"):
        jobs.check_settings(config)


# ---- a full disk ----

FAULT_SCRIPT = """
import errno, os, sys
sys.path.insert(0, {root!r})
kind, at = sys.argv[1], int(sys.argv[2])
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == at

def no_space(path):
    return OSError(errno.ENOSPC, "No space left on device", path)

if kind == "checkpoint":
    import tensorflow as tf
    save = tf.train.CheckpointManager.save
    def failing_save(self, checkpoint_number=None, **kwargs):
        if due():  # What TensorFlow leaves and raises when the disk fills during SaveV2.
            os.makedirs(os.path.join(self.directory, f"ckpt-{{checkpoint_number}}_temp"))
            raise tf.errors.ResourceExhaustedError(None, None, "ckpt_temp/part-00000; No space left on device [Op:SaveV2]")
        return save(self, checkpoint_number=checkpoint_number, **kwargs)
    tf.train.CheckpointManager.save = failing_save
elif kind == "sample":
    from PIL import Image
    save = Image.Image.save
    def failing_save(self, fp, *args, **kwargs):
        if "samples" in str(fp) and due():
            raise no_space(fp)
        return save(self, fp, *args, **kwargs)
    Image.Image.save = failing_save
elif kind == "model":
    import keras
    save = keras.Model.save
    def failing_save(self, filepath, *args, **kwargs):
        if due():
            raise no_space(filepath)
        return save(self, filepath, *args, **kwargs)
    keras.Model.save = failing_save
import main
sys.argv = ["main.py", *sys.argv[3:]]
main.launch()
"""


def fault_args(output, mnist_dir):
    return ["--train-digits", "3", "--steps", "6", "--batch-size", "8", "--sample-every", "2", "--checkpoint-every", "2",
            "--eval-every", "0", "--snapshots", "0", "--runs-per-digit", "1", "--workers", "1", "--mnist-dir", mnist_dir,
            "--output-dir", str(output), *TINY_WIDTH_FLAGS]  # fmt: skip


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    if not os.path.isdir(REAL_MNIST_DIR):
        pytest.skip("real MNIST not set up; run `make test`, which fetches it first")
    output = tmp_path_factory.mktemp("straight") / "output"
    result = run_main(*fault_args(output, REAL_MNIST_DIR))
    assert result.returncode == 0, result.stderr
    return output


def generator_weights(output):
    return keras.models.load_model(outputs.generator_path(str(output), 3)).get_weights()


# Each fault falls at step 4, after the checkpoint of step 2: the second checkpoint, the third sample
# grid (step 0's is the first) and the second generator.keras.
@pytest.mark.parametrize("kind, at", [("checkpoint", 2), ("sample", 3), ("model", 2)])
def test_a_full_disk_is_one_line_and_the_same_command_resumes_to_the_straight_runs_result(kind, at, tmp_path, straight_run, real_mnist_dir):
    output = tmp_path / "output"
    script = FAULT_SCRIPT.format(root=ROOT)
    args = [sys.executable, "-c", script, kind, str(at), *fault_args(output, real_mnist_dir)]
    failed = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    one_line_refusal(failed, f"the disk of {output}", "is full (", "MiB free there", "run the same command again")
    checkpoints = output / "digit-3" / "checkpoints"
    assert not [name for name in os.listdir(checkpoints) if "_temp" in name]  # No half-written checkpoint is left.
    resumed = run_main(*fault_args(output, real_mnist_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step 2" in resumed.stderr
    for a, b in zip(generator_weights(output), generator_weights(straight_run)):
        np.testing.assert_array_equal(a, b)
    steps = outputs.MetricsCsv(outputs.digit_metrics_path(str(output), 3), ()).steps()
    assert steps == outputs.MetricsCsv(outputs.digit_metrics_path(str(straight_run), 3), ()).steps() == [2, 4, 6]


def test_a_digit_another_command_is_training_is_known_to_readers(tmp_path):
    os.makedirs(outputs.digit_dir(str(tmp_path), 5))
    lock = locks.Lock(str(tmp_path), locks.digit_lock_name(5), "digit 5").acquire()
    assert locks.digits_in_training(str(tmp_path)) == [5]
    lock.release()
    assert locks.digits_in_training(str(tmp_path)) == []
    family = outputs.digit_dir(str(tmp_path), "cdcgan")  # A conditional family's network of digits 2 and 7.
    os.makedirs(family)
    outputs.write_json(os.path.join(family, "run.json"), {"digits": [2, 7], "status": "running"})
    lock = locks.Lock(str(tmp_path), locks.digit_lock_name("cdcgan"), "cdcgan").acquire()
    assert locks.digits_in_training(str(tmp_path)) == [2, 7]
    lock.release()


SITECUSTOMIZE = """
import errno, multiprocessing, os
from PIL import Image

_save, _calls = Image.Image.save, [0]

def _failing_save(self, fp, *args, **kwargs):
    # Only in worker processes: the third sample grid each one writes finds the disk full.
    if multiprocessing.current_process().name.startswith("mnistgan-worker") and "samples" in str(fp):
        _calls[0] += 1
        if _calls[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
    return _save(self, fp, *args, **kwargs)

Image.Image.save = _failing_save
"""


def test_a_full_disk_in_a_worker_process_is_one_line_and_the_run_resumes(tmp_path, real_mnist_dir):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    output = tmp_path / "output"
    args = [*fault_args(output, real_mnist_dir), "--train-digits", "3,5", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(hook)}
    failed = subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    one_line_refusal(failed, f"the disk of {output}", "is full (", "run the same command again")
    resumed = run_main(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step 2" in resumed.stderr
    for digit in (3, 5):
        assert outputs.MetricsCsv(outputs.digit_metrics_path(str(output), digit), ()).steps() == [2, 4, 6]


def test_the_classifier_refuses_digits_still_in_training(tmp_path):
    from mnistgan import classifier, config as config_lib
    from tests.test_classifier import save_generators, tiny_mnist

    output = str(tmp_path)
    save_generators(output)
    lock = locks.Lock(output, locks.digit_lock_name(5), "digit 5").acquire()
    config = config_lib.Config(action="train-mnist", output_dir=output, classifier=config_lib.ClassifierConfig(steps=2))
    with pytest.raises(UserError, match=r"digit\(s\) 5 in .* are still training"):
        classifier.train_and_report(config, tiny_mnist())
    lock.release()
    assert not os.path.exists(outputs.classifier_dir(output, "synthetic"))
