"""The jobs of a `--train-digits` command: one run of one digit each, how messages name them, their locks,
and the check that their settings match the runs they resume.

Free of TensorFlow, so that the parent of worker processes can hand jobs out.
"""

import os

import numpy as np

from mnistgan import config as config_lib, data, generators, locks, outputs
from mnistgan.errors import UserError

VALUES_BEFORE_RECORDED = config_lib.values_before_recorded(config_lib.GanConfig)
# What runs_left reads of a run.json (a run killed before its first record has none of it).
RUN_FIELDS = {"steps_done": (int, outputs.NONE)}


def resume_keys(run, gan=None):
    """The settings a checkpoint of a unit's run `run` (1-based) cannot be resumed under once they change
    (declared in config.GanConfig; run 1 resumes under a changed coverage focus, unless the `GanConfig` `gan`
    refreshes its coverage weights, which the focus then shapes in run 1 too)."""
    keys = config_lib.resume_keys(config_lib.GanConfig, run=run)
    if gan is not None and gan.coverage_refresh > 0 and "coverage_focus" not in keys:
        keys += ("coverage_focus",)
    return keys


def units_of(config):
    """What `config` trains a network of: each digit, or for a conditional family its name (one network for all digits)."""
    return [config.gan.family] if config.gan.family in config_lib.CONDITIONAL_FAMILIES else list(config.digits)


def run_label(unit, run=1):
    """How messages and the progress board name one run of a digit (or of a conditional family's network)."""
    name = unit if isinstance(unit, str) else f"digit {unit}"
    return name if run == 1 else f"{name} (run {run})"


def jobs_of(config, per_digit, negatives=None):
    """The (unit, run, train, validation, negatives) jobs of `config`: every unit's run 1, then every run 2, ...

    So every digit has a generator as early as one run per digit allows. A digit's
    job holds its uint8 (n, 28, 28) training and validation images, and the other digits'
    training images when its GAN learns from them (`GanConfig.negative_weight`), else None;
    a conditional family's holds (images, int digits) of all the digits, in one job per run.

    Args:
      config: the whole `Config`.
      per_digit: (digit, train_images, validation_images) tuples, as `data.per_digit` makes them.
      negatives: {digit: uint8 images of the other digits}, as `data.other_digits` makes them; None: none.
    """
    per_digit = list(per_digit)
    negatives = negatives or {}
    runs = range(1, config.gan.runs_per_digit + 1)
    if config.gan.family in config_lib.CONDITIONAL_FAMILIES:
        train, validation = ((np.concatenate([p[i] for p in per_digit]), np.concatenate([[p[0]] * len(p[i]) for p in per_digit])) for i in (1, 2))
        return [(config.gan.family, run, train, validation, None) for run in runs]
    return [(digit, run, train, validation, negatives.get(digit)) for run in runs for digit, train, validation in per_digit]


def mnist_jobs(config, mnist):
    """`jobs_of` `config` with its digits' images from `mnist` (a `data.Mnist`), and their negatives when it asks for them."""
    negatives = None
    if config.gan.negative_weight > 0:
        negatives = {digit: data.other_digits(mnist, digit) for digit in config.digits}
    return jobs_of(config, data.per_digit(mnist, config.digits), negatives)


def runs_left(config):
    """How many of `config`'s runs have steps left to train, by their run.json (read without TensorFlow; a
    record that is not there or says otherwise counts as left).

    Raises:
      UserError: naming a run.json whose steps_done is not a whole number, and how to start that run over.
    """
    if config.restart:
        return len(units_of(config)) * config.gan.runs_per_digit
    left = 0
    for unit in units_of(config):
        for run in range(1, config.gan.runs_per_digit + 1):
            folder = outputs.digit_dir(config.output_dir, unit, run)
            record = outputs.read_json(outputs.training_files(folder).record, restart_remedy(config, unit), RUN_FIELDS) or {}
            done = record.get("status") == "done" and (record.get("steps_done") or 0) >= config.gan.steps
            left += not (done and os.path.exists(outputs.generator_path(config.output_dir, unit, run)))
    return left


def job_locks(config):
    """A `locks.Lock` for every run that `config` trains: one command per run of a unit at a time."""
    runs = range(1, config.gan.runs_per_digit + 1)
    return [
        locks.Lock(config.output_dir, locks.digit_lock_name(unit, run), run_label(unit, run))
        for unit in units_of(config)
        for run in runs
    ]


def restart_remedy(config, unit):
    """What to do about a damaged file or a changed setting of a unit's run: start it over (the command)."""
    return generators.retrain_digit(unit, config.digits or generators.ALL_DIGITS)


def check_settings(config):
    """Refuses, without TensorFlow, to resume a run whose run.json says it trained with other settings or seed.

    gan.check_digits makes the same check among the rest, once TensorFlow has started; this one
    spares a command with a changed flag the seconds of starting it (or its worker processes).

    Raises:
      UserError: naming the run's folder and each changed setting, or a damaged run.json;
        or an evaluator that learned from other real images than the runs it would steer.
    """
    check_evaluator(config)
    if config.restart:
        return  # Its folders are deleted.
    for unit in units_of(config):
        for run in range(1, config.gan.runs_per_digit + 1):
            record = outputs.training_files(outputs.digit_dir(config.output_dir, unit, run)).record
            outputs.read_resumable_record(
                record, config.gan, config.seed, resume_keys(run, config.gan), VALUES_BEFORE_RECORDED, restart_remedy(config, unit)
            )


def check_evaluator(config):
    """Refuses an evaluator that would steer runs (choose their kept generator, weigh coverage) with knowledge
    of other real images than they learn from: one trained on all 55,000 images steering runs given the first
    N of each digit (`--real-per-digit N`) would lend them the whole data set. An evaluator not trained yet is
    trained on the runs' images (evaluation.load_or_train_evaluator, which records them).

    Raises:
      UserError: one line naming the evaluator's folder, the images each learned from and what to do.
    """
    if not config.gan.uses_evaluator:
        return
    folder = outputs.evaluator_dir(config.output_dir)
    record = outputs.read_evaluator_record(config.output_dir)
    trained = config.gan.real_per_digit if record is None else record.get("real_per_digit") or 0
    if trained != config.gan.real_per_digit:
        raise UserError(
            f"the evaluator in {folder} learned from {data.real_images_text(trained)}, and the runs it would steer from "
            f"{data.real_images_text(config.gan.real_per_digit)}: give --real-per-digit {trained}, or train into another "
            f"--output-dir (or delete {folder}, which is trained again on the runs' images)"
        )
