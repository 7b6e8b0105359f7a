"""Files read back from output/: a damaged one is refused in one line, and nothing else is touched."""

import dataclasses
import os
import re
import shutil

import numpy as np
import pytest

from mnistgan import classifier, config as config_lib, evaluation, gan, outputs, report
from mnistgan.errors import UserError
from tests.conftest import blob_images, run_main, tiny_config
from tests.test_classifier import constant_samplers, tiny_mnist

# The template's runs stop part-way (or finish) at these steps; commands resume them.
GAN_STEPS, CLASSIFIER_STEPS, EVALUATOR_STEPS = 4, 6, 30
TOY_EVALUATOR = dataclasses.replace(
    evaluation.EVALUATOR_CONFIG, steps=EVALUATOR_STEPS, batch_size=20, eval_every=EVALUATOR_STEPS,
    checkpoint_every=EVALUATOR_STEPS,
)  # fmt: skip


def gan_config(output_dir, steps, digits=(3,)):
    # The command-line cases resume this run under the default preset, so it trains with the preset's techniques.
    preset = config_lib.PRESETS["default"][0]
    config = tiny_config(
        output_dir, steps=steps, checkpoint_every=GAN_STEPS, eval_every=0,
        d_learning_rate=preset.d_learning_rate, minibatch_std_group=preset.minibatch_std_group,
        generator_width=preset.generator_width, discriminator_width=preset.discriminator_width, packing=preset.packing,
    )  # fmt: skip
    return dataclasses.replace(config, output_dir=str(output_dir), digits=digits)


def classifier_config(output_dir, steps, sources=("synthetic",)):
    classifier_settings = config_lib.ClassifierConfig(steps=steps, batch_size=20, eval_every=3, checkpoint_every=3)
    return config_lib.Config(
        action="train-mnist", data_sources=sources, output_dir=str(output_dir), classifier=classifier_settings
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """An output folder with a part-trained digit 3, ten generators, a classifier, results.jsonl and the evaluator."""
    output = tmp_path_factory.mktemp("template") / "output"
    gan.DigitTraining(gan_config(output, GAN_STEPS), 3, blob_images(64), blob_images(16, seed=1)).train()
    for digit, (sampler,) in enumerate(constant_samplers()):
        if digit != 3:
            os.makedirs(outputs.digit_dir(str(output), digit))
            sampler.model.save(outputs.generator_path(str(output), digit))
    classifier.DataSourceClassifier(classifier_config(output, CLASSIFIER_STEPS), "synthetic", tiny_mnist()).train()
    evaluation.load_or_train_evaluator(str(output), tiny_mnist(), config=TOY_EVALUATOR, min_accuracy=0.0)
    return output


def copy_of(template, tmp_path):
    """A copy whose files are hard links to the template's: free to make, and equal to it byte for byte."""
    output = tmp_path / "output"
    shutil.copytree(template, output, copy_function=os.link)
    return output


def damage(path, how):
    raw = path.read_bytes()
    path.unlink()  # A hard link to the template: write a new file in its place.
    if how == "truncated":
        cut = len(raw) // 2
        while raw[cut - 1 : cut] == b"\n":  # A cut at a line end leaves a shorter, whole text file.
            cut -= 1
        path.write_bytes(raw[:cut])
    else:
        path.write_bytes(np.random.default_rng(len(raw)).integers(0, 256, len(raw), dtype=np.uint8).tobytes())


def snapshot(folder):
    """Every file under `folder` -> (inode, size, modification time in ns).

    A rewrite by rename changes the inode, a write in place the time, so equal
    snapshots mean no file was touched, added or removed. The lock files in
    .locks/ are left out: a command takes its locks before it reads anything
    (see locks.py), and they hold no output; they must be empty again after it.
    """
    files = {}
    for root, _, names in os.walk(folder):
        if os.path.relpath(root, folder).split(os.sep)[0] == ".locks":
            assert all(os.path.getsize(os.path.join(root, name)) == 0 for name in names), "a lock was not released"
            continue
        for name in names:
            stat = os.stat(os.path.join(root, name))
            files[os.path.relpath(os.path.join(root, name), folder)] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return files


def evaluate_config(output):
    return config_lib.Config(action="evaluate", digits=(3,), output_dir=str(output), eval_samples=20)


# Digit 2 and the real-data classifier come first and have nothing to resume: they would be
# trained (and write files) if the damaged file were not refused before any work.
BOTH = ("real", "synthetic")
COMMANDS = {
    "train-digits": lambda out: gan.train_digits(gan_config(out, GAN_STEPS + 2, digits=(2, 3)), tiny_mnist()),
    "train-mnist": lambda out: classifier.train_and_report(classifier_config(out, CLASSIFIER_STEPS + 3, BOTH), tiny_mnist()),
    "train-mnist again": lambda out: classifier.train_and_report(classifier_config(out, CLASSIFIER_STEPS, BOTH), tiny_mnist()),
    "evaluate": lambda out: report.evaluate(evaluate_config(out), tiny_mnist()),
    "evaluator": lambda out: evaluation.load_or_train_evaluator(str(out), tiny_mnist(), config=TOY_EVALUATOR),
}
CKPT = "checkpoints/ckpt-{}"
DATA = ".data-00000-of-00001"
# (damaged file, the command that reads it, a file deleted first or None, what the message names).
CASES = [
    *[(f"digit-3/{name}", "train-digits", None) for name in ("run.json", "metrics.csv", "evolution.npz")],
    *[(f"digit-3/{name}", "train-digits", None) for name in ("checkpoints/checkpoint", CKPT.format(GAN_STEPS) + ".index")],
    ("digit-3/" + CKPT.format(GAN_STEPS) + DATA, "train-digits", None),
    ("digit-3/generator.keras", "evaluate", None),
    ("digit-3/run.json", "train-mnist", None),
    *[(f"classifier-synthetic/{name}", "train-mnist", None) for name in ("run.json", "metrics.csv", "checkpoints/checkpoint")],
    *[(f"classifier-synthetic/{CKPT.format(CLASSIFIER_STEPS)}{suffix}", "train-mnist", None) for suffix in (".index", DATA)],
    ("classifier-synthetic/model.keras", "train-mnist again", None),
    ("results.jsonl", "train-mnist", None),
    ("results.jsonl", "evaluate", None),
    ("evaluator/model.keras", "evaluator", None),
    ("evaluator/evaluator.json", "evaluator", None),
    *[(f"evaluator/{name}", "evaluator", "evaluator/model.keras") for name in ("run.json", "checkpoints/checkpoint")],
    *[(f"evaluator/{CKPT.format(EVALUATOR_STEPS)}{suffix}", "evaluator", "evaluator/model.keras") for suffix in (".index", DATA)],
]


def names_it(message, output, damaged_file):
    """Whether `message` names the file (a checkpoint by its prefix, a JSON-lines file maybe with the line)."""
    for suffix in (".index", DATA):
        damaged_file = damaged_file.removesuffix(suffix)
    return re.search(re.escape(os.path.join(str(output), damaged_file)) + r"( line \d+)? is damaged \(", message)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
@pytest.mark.parametrize("damaged_file, command, deleted", CASES)
def test_a_damaged_file_is_refused_in_one_line_and_nothing_is_touched(template, tmp_path, damaged_file, command, deleted, how):
    output = copy_of(template, tmp_path)
    if deleted:
        (output / deleted).unlink()
    damage(output / damaged_file, how)
    before = snapshot(output)
    with pytest.raises(UserError) as error:
        COMMANDS[command](output)
    message = str(error.value)
    assert "\n" not in message and names_it(message, output, damaged_file), message
    assert "--restart" in message or "delete" in message or "remove" in message, message
    assert snapshot(output) == before


@pytest.mark.parametrize(
    "damaged_file, how, args",
    [
        (
            f"digit-3/{CKPT.format(GAN_STEPS)}{DATA}", "garbage",
            # Two digits: worker processes (the default), the first of which checks every digit before any trains.
            ["--train-digits", "2,3", "--steps", str(GAN_STEPS + 2), "--batch-size", "8", "--eval-every", "0"],
        ),
        (
            f"classifier-synthetic/{CKPT.format(CLASSIFIER_STEPS)}.index", "truncated",
            # As the template's classifier was trained: from generator.keras, noise N(0, 1).
            ["--train-mnist", "--classifier-steps", str(CLASSIFIER_STEPS + 3), "--classifier-batch-size", "20",
             "--snapshot-mixture=false", "--noise-scale=1"],
        ),
        ("evaluator/model.keras", "garbage", ["--evaluate", "--digits", "3", "--eval-samples", "20"]),
    ],
)  # fmt: skip
def test_the_command_line_refuses_a_damaged_file_with_exit_status_2(
    template, tmp_path, real_mnist_dir, damaged_file, how, args
):
    output = copy_of(template, tmp_path)
    damage(output / damaged_file, how)
    before = snapshot(output)
    result = run_main(*args, "--output-dir", str(output), "--mnist-dir", real_mnist_dir)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("main.py: error: ") and names_it(last, output, damaged_file), result.stderr
    assert snapshot(output) == before


# ---- the helpers themselves ----


def test_metrics_csv_keeps_rows_up_to_a_step_and_maps_older_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n2,0.5\n4,0.25\n6,0.125\n")
    csv = outputs.MetricsCsv(str(path), ("step", "loss", "accuracy"))
    csv.trim(4)
    assert path.read_text() == "step,loss,accuracy\n2,0.5,\n4,0.25,\n"
    csv.append({"step": 6, "accuracy": 0.75})
    assert csv.rows()[-1] == {"step": "6", "loss": "", "accuracy": "0.75"} and csv.steps() == [2, 4, 6]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("step,loss\n2,0.5\n4,0.2", "cut off"),
        ("step,loss\n2,0.5\n4\n", "line 3 is not 2 numbers"),
        ("step,loss\n2,zero\n", "line 2 is not 2 numbers"),
        ("step,loss\n4,0.5\n2,0.5\n", "line 3 does not follow step 4"),
        ("", "no header"),
    ],
)
def test_metrics_csv_refuses_what_it_did_not_write(tmp_path, text, reason):
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=f"metrics.csv is damaged \\({reason}.*\\); delete it"):
        outputs.MetricsCsv(str(path), ("step", "loss")).trim(10)
    assert path.read_text() == text


def test_a_record_must_be_an_object_with_the_fields_read(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="run.json is damaged \\(a JSON list where a record was expected\\); fix it"):
        outputs.read_json(str(path), "fix it")
    path.write_text('{"seed": 0, "config": {}, "wall_time_s": "long"}')
    with pytest.raises(UserError, match="'wall_time_s' is missing or not a int or float"):
        outputs.read_json(str(path), "fix it", outputs.RECORD_FIELDS)
    assert outputs.read_json(str(tmp_path / "absent.json"), "fix it") is None
