"""The checks a `--train-digits` command makes without TensorFlow (jobs.py), and the run and evaluator records they
read: a record edited by hand is one line naming it and what to do, never a traceback."""

import dataclasses
import os
import re

import pytest

from mnistgan import config as config_lib, generators, jobs, outputs
from mnistgan.errors import UserError
from tests.conftest import outcomes_before_tensorflow, tiny_config


def write_run_record(output, record, digit=3):
    """digit-N/run.json holding `record`, beside an (empty) kept generator, so the folder lists the run."""
    path = outputs.training_files(outputs.digit_dir(output, digit)).record
    os.makedirs(os.path.dirname(path), exist_ok=True)
    outputs.write_json(path, record)
    open(outputs.generator_path(output, digit), "wb").close()
    return path


@pytest.mark.parametrize(
    "record, check, reason",
    [
        ({"status": "done", "steps_done": "4"}, jobs.runs_left, "field 'steps_done' is not a int"),
        ({"config": {"real_per_digit": "100"}}, generators.check_real_per_digit, "field 'real_per_digit' is not a int"),
        ({"config": "100"}, generators.check_real_per_digit, "field 'config' is not a dict"),
    ],
)
def test_a_hand_edited_run_record_is_one_line(tmp_path, record, check, reason):
    config = tiny_config(tmp_path)
    path = write_run_record(config.output_dir, record)
    # runs_left starts the run over; a consumer of the folder's generators trains it again.
    remedy = "start digit 3 over: ./main.py --train-digits 3 --restart" if check is jobs.runs_left else f"delete {os.path.dirname(path)} and train it again"
    with pytest.raises(UserError, match=rf"^{re.escape(path)}( config)? is damaged \({reason}\); {re.escape(remedy)}$"):
        check(config) if check is jobs.runs_left else check(config.output_dir, 100)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"test_accuracy": 0.99, "real_per_digit": "100"}, r"field 'real_per_digit' is not a int"),
        ({"test_accuracy": 0.99, "real_per_digit": -100}, r"field 'real_per_digit' is negative"),
        ({"test_accuracy": "99%"}, r"field 'test_accuracy' is missing or not a int or float"),
    ],
)
def test_a_hand_edited_evaluator_record_is_one_line(tmp_path, record, message):
    """jobs.check_evaluator and the report read evaluator.json through one reader, outputs.read_evaluator_record."""
    config = tiny_config(tmp_path, eval_every=2)
    path = outputs.evaluator_files(config.output_dir)[1]
    os.makedirs(os.path.dirname(path))
    outputs.write_json(path, record)
    remedy = f"delete {outputs.evaluator_dir(config.output_dir)} to train the evaluator again"
    for check in (jobs.check_evaluator, lambda config: outputs.read_evaluator_record(config.output_dir)):
        with pytest.raises(UserError, match=rf"^{re.escape(path)} is damaged \({message}\); {re.escape(remedy)}$"):
            check(config)


def test_a_sound_evaluator_record_of_other_images_is_refused_by_name(tmp_path):
    config = tiny_config(tmp_path, eval_every=2)
    path = outputs.evaluator_files(config.output_dir)[1]
    os.makedirs(os.path.dirname(path))
    outputs.write_json(path, {"test_accuracy": 0.96, "real_per_digit": 100})
    with pytest.raises(UserError, match=r"learned from the first 100 training images of each digit, .* give --real-per-digit 100"):
        jobs.check_evaluator(config)
    outputs.write_json(path, {"test_accuracy": 0.99})  # Before real_per_digit was recorded: all the images.
    jobs.check_evaluator(config)


def test_the_parent_of_worker_processes_refuses_a_hand_edited_step_count(tmp_path, real_mnist_dir):
    """Where runs_left runs: before any worker process (or TensorFlow) starts."""
    settings = dataclasses.asdict(config_lib.PRESETS["default"][0])  # What the command below resumes under.
    write_run_record(str(tmp_path), {"config": settings, "seed": 0, "wall_time_s": 1.0, "status": "done", "steps_done": "4000"})
    (refusal,), imported = outcomes_before_tensorflow(
        ["--train-digits", "3,4", "--workers", "2", "--runs-per-digit", "1", "--output-dir", str(tmp_path), "--mnist-dir", real_mnist_dir]
    )
    assert not imported
    assert refusal == (
        f"{tmp_path}/digit-3/run.json is damaged (field 'steps_done' is not a int); "
        "start digit 3 over: ./main.py --train-digits 3 --restart"
    )
