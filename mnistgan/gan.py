"""A GAN run: one per digit, trained on that digit alone, or a conditional family's one network for all digits.

The pieces: gan_state.py (what a checkpoint holds), gan_step.py (the compiled
step), gan_monitor.py (calibrated generator, held-out check, selection), gan_files.py
(samples, evolution strip, saved generators) and harness.py (the loop). A run
of digit d writes into `output/digit-d/` (see outputs.py for names):
generator.keras, samples/step-NNNNNN.png, evolution.png and evolution.npz,
metrics.csv, logs/ (TensorBoard), checkpoints/ and run.json. With
`runs_per_digit` > 1, run r of the digit (its own seed) writes the same files
into `output/digit-d/run-r/`. A conditional family (families.py) trains one
network on every digit of the command into `output/<family>/` (`ConditionalTraining`).
When the runs end, the process that started them puts what they kept into
output/generators.json (`generators.record_training`).
"""

import dataclasses
import functools
import os
import uuid

import numpy as np
import tensorflow as tf
from absl import logging

from mnistgan import config as config_lib, coverage, data, gan_files, gan_monitor, gan_state, gan_step, generators, harness, locks, outputs, precision
from mnistgan.errors import UserError
from mnistgan.jobs import VALUES_BEFORE_RECORDED, job_locks, mnist_jobs, restart_remedy, resume_keys, run_label, units_of
from mnistgan.progress import Progress
from mnistgan.results import DigitResult, exit_status, print_summary

CSV_FIELDS = (
    "step", "d_loss", "g_loss", "heldout_d_accuracy", "frechet_distance", "class_precision", "precision", "recall",
    "elapsed_s",
)  # fmt: skip
# Seeds of a digit's runs lie this far apart: no two runs share a seed while config seeds stay below 10,000.
RUN_SEED_STRIDE = 100_000
# A conditional family's run seeds lie beyond every digit's.
CONDITIONAL_SEED_OFFSET = 1_000_000_000


def run_seed(seed, digit, run=1):
    """The seed of run `run` (1-based) of `digit` under the config seed `seed`; run 1 keeps seed * 10 + digit."""
    return seed * 10 + digit + RUN_SEED_STRIDE * (run - 1)


class DigitTraining:
    """Training of one digit with its files: resume, samples, logs, checkpoints.

    Args:
      config: the whole `Config`.
      digit: 0-9.
      train_images, validation_images: uint8 (n, 28, 28) images of this
        digit; None when only `check` is needed.
      evaluator: an `evaluation.Evaluator`; when given, the generator is
        measured every `eval_every` steps and the best one is kept.
      progress: makes the progress reporter from (label, start step, total
        steps): a `Progress`, or what reports to a parent process.
      run: which of the digit's `runs_per_digit` independent runs (1-based).
      attempt: an `ownership.Attempt` (cluster.py): it claims the folder and stops once a newer one has.
      negatives: uint8 (n, 28, 28) training images of the other digits, which D learns to tell from this
        one (`GanConfig.negative_weight`); None: none.
    """

    def __init__(
        self, config, digit, train_images=None, validation_images=None, evaluator=None, progress=Progress, run=1, attempt=None,
        negatives=None,
    ):  # fmt: skip
        self.config = config
        self.attempt = attempt  # An `ownership.Attempt` on a cluster; None where locks keep one writer.
        self.make_progress = progress
        self.evaluator = evaluator if config.gan.eval_every > 0 else None  # Selects the best generator.
        self.feature_evaluator = evaluator  # Measures coverage for coverage-targeted runs.
        self.digit, self.run = digit, run
        self.label = run_label(digit, run)
        self.folder = outputs.digit_dir(config.output_dir, digit, run)
        self.paths = outputs.training_files(self.folder)
        self.run_json, self.checkpoint_dir = self.paths.record, self.paths.checkpoints
        self.remedy = self._remedy()
        policy, self.precision_note = precision.run_policy(config.gan.precision, self._recorded_config(), config.machine_precision)
        self.gan_config = dataclasses.replace(config.gan, precision=policy)
        self.csv = outputs.MetricsCsv(
            outputs.digit_metrics_path(config.output_dir, digit, run), CSV_FIELDS, f"delete it (its rows are lost) or {self.remedy}"
        )
        self.files = self._files()
        self.train_images = None if train_images is None else data.to_float(train_images)
        self.validation_images = None if validation_images is None else data.to_float(validation_images)
        self.negatives = None if negatives is None else data.to_float(negatives)
        self.train_labels = self.validation_labels = None  # A conditional unit's (ConditionalTraining).
        self.seed = self._seed()
        self.coverage_path = os.path.join(self.folder, "coverage.npz")
        self.refresh_path = os.path.join(self.folder, "coverage-refresh.npz")
        self.earlier_distances = self.train_features = None  # For coverage refreshes (refresh_coverage).

    def _remedy(self):
        return restart_remedy(self.config, self.digit)

    def _recorded_config(self):
        """The settings run.json says this run trained with, or None (a fresh run; a damaged record, which `check` names)."""
        if self.config.restart:
            return None
        try:
            record = outputs.read_json(self.run_json, self.remedy, outputs.RECORD_FIELDS)
        except UserError:
            return None
        return record and record["config"]

    def _seed(self):
        return run_seed(self.config.seed, self.digit, self.run)

    def _files(self):
        return gan_files.DigitFiles(self.config, self.digit, self.remedy, self.run)

    def new_state(self, draw_weights=None):
        """A new `GanState` of this run's images (and labels)."""
        return gan_state.GanState(self.gan_config, self.train_images, self.seed, draw_weights, self.train_labels, self.negatives)

    def selection(self):
        """The `gan_monitor.Selection` that measures this run's generator and keeps the best."""
        return gan_monitor.Selection(self.gan_config, self.evaluator, {self.digit: self.validation_images}, self.seed)

    def heldout_accuracy(self, state, generator, seed):
        """D's accuracy on the validation images against fresh generated ones (gan_monitor.heldout_accuracy)."""
        return gan_monitor.heldout_accuracy(state, generator, self.validation_images, self.gan_config.heldout_samples, seed)

    def write_record(self, record, step, wall_time_s, status):
        harness.write_record(
            self.run_json,
            record,
            digit=self.digit,
            run=self.run,
            seed=self.config.seed,
            config=dataclasses.asdict(self.gan_config),
            steps_done=int(step),
            target_steps=self.gan_config.steps,
            wall_time_s=round(wall_time_s, 2),
            steps_per_second=round(self.progress.steps_per_second(step), 2),
            # The cores it trained on, so that runs trained side by side and alone compare by core-minutes.
            cores=tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1,
            command=self.config.command or record.get("command", ""),
            status=status,
        )

    def check(self):
        """Reads back every file that training this digit will read, before anything is written.

        Returns:
          (record, checkpoint): the run.json to resume from and the prefix of
          the latest checkpoint, each None for a fresh run.

        Raises:
          UserError: naming a damaged file and what to do, or settings that
            differ from the run's.
        """
        if self.config.restart:
            return None, None  # The folder is deleted.
        record = outputs.read_resumable_record(
            self.run_json, self.gan_config, self.config.seed, resume_keys(self.run, self.gan_config), VALUES_BEFORE_RECORDED, self.remedy
        )
        checkpoint = outputs.latest_checkpoint(self.checkpoint_dir, self.remedy)
        if not self._finished(record, outputs.checkpoint_step(checkpoint)):
            self.csv.rows()
            self.files.load_evolution()
            if self._coverage_targeted():
                coverage.read_weights(self.coverage_path)
            if self.gan_config.coverage_refresh:
                coverage.read_refreshes(self.refresh_path)
        return record, checkpoint

    def _first_record(self):
        """What a new run's run.json holds beside its id and time."""
        return {}

    def _coverage_targeted(self):
        return self.gan_config.coverage_focus > 0 and self.run > 1

    def _draw_weights(self, record):
        """The real images' drawing probabilities of a coverage-targeted run (noted in `record`), else None."""
        if not self._coverage_targeted():
            return None
        if self.feature_evaluator is None:
            raise ValueError("a coverage-targeted run needs the evaluator")  # The callers load it (GanConfig.uses_evaluator).
        weights, record["coverage"] = coverage.run_weights(
            self.config.output_dir, self.folder, self.digit, self.run, self.gan_config.coverage_focus, self.feature_evaluator,
            self.train_images, self.seed, lambda text: logging.info("%s: %s", self.label, text),
        )  # fmt: skip
        if self.gan_config.coverage_refresh:
            self.earlier_distances = coverage.read_weights(self.coverage_path)[1]["distances"]
        return weights

    def refresh_coverage(self, state, generator, step):
        """Draws the real images toward those the generator of `step` (and the earlier runs) covers worst from now on,
        the weights kept in coverage-refresh.npz first (coverage.py)."""
        if self.train_features is None:
            self.train_features, _ = self.feature_evaluator.features_and_probabilities(self.train_images)
        seed = gan_monitor.noise_seed(self.seed, step, "coverage")
        own = generators.Sampler(generator).draw(coverage.GENERATED_SAMPLES, seed)
        distances = coverage.distances_to(self.feature_evaluator, own, self.train_features)
        if self.earlier_distances is not None:
            distances = np.minimum(distances, self.earlier_distances)
        weights = coverage.weights_from_distances(distances, self.gan_config.coverage_focus)
        coverage.save_refresh(self.refresh_path, step, weights)
        state.set_draw_weights(weights)
        self.progress.message(
            f"{self.label}: step {step}: drawing toward what it covers worst: the most-weighted image "
            f"{np.max(weights) * len(weights):.1f}x as often as uniform"
        )

    def _finished(self, record, step):
        """Whether the run ended (all steps, or stopped by --stop-on-decline) with its generator saved."""
        stopped = bool(record and record.get("stopped_on_decline")) and self.gan_config.stop_on_decline
        saved = os.path.exists(outputs.generator_path(self.config.output_dir, self.digit, self.run))
        return (step >= self.gan_config.steps or stopped) and saved

    def train(self, step_fn=None):
        """Trains (or resumes) this digit up to `config.gan.steps`. Returns a `DigitResult`.

        A digit stopped by `stop_on_decline` stays stopped while that setting
        is on; without it, it resumes.

        Args:
          step_fn: a `gan_step.GanStep` of the same `GanConfig` to reuse (its
            state is reset to this digit); a new one when None.
        """
        cfg = self.gan_config
        if self.config.restart:
            outputs.clear_digit_dir(self.config.output_dir, self.digit, self.run)
        record, checkpoint = self.check()
        os.makedirs(self.folder, exist_ok=True)
        record = record or {"run_id": uuid.uuid4().hex[:12], "wall_time_s": 0.0, **self._first_record()}
        guard = None
        if self.attempt:
            self.attempt.claim(self.folder)
            record["node"] = self.attempt.node
            guard = functools.partial(self.attempt.check, self.folder)
        draw_weights = self._draw_weights(record)
        if step_fn is None:
            step_fn = gan_step.GanStep(self.new_state(draw_weights))
        else:
            step_fn.state.reset(self.train_images, self.seed, draw_weights, self.train_labels, self.negatives)
        loop = harness.Harness(step_fn.state.checkpoint, self.checkpoint_dir, self.remedy, guard)
        loop.restore(checkpoint)
        start = int(step_fn.state.step.numpy())
        if cfg.coverage_refresh:  # The weights of the last refresh the checkpoint had passed, if any.
            refreshed = coverage.refreshed_weights(self.refresh_path, start, len(self.train_images))
            if refreshed is not None:
                step_fn.state.set_draw_weights(refreshed)
        if self._finished(record, start):
            logging.info("%s: already trained (%d steps); skipping", self.label, start)
            if record.get("status") != "done" or record.get("steps_done") != start:
                # A failure (a full disk) fell after the last checkpoint, before run.json said so.
                self.progress = self.make_progress(self.label, start, cfg.steps)
                self.write_record(record, start, record["wall_time_s"], "done")
            return self._result(record, "done", start)
        record.pop("stopped_on_decline", None)  # Resumed without --stop-on-decline.
        if start:
            logging.info("%s: resuming from step %d", self.label, start)
        self.csv.trim(start)
        writer = tf.summary.create_file_writer(self.paths.logs)
        self.progress = self.make_progress(self.label, start, cfg.steps)
        if start and self.precision_note:
            self.progress.message(f"{self.label}: {self.precision_note}")
        self.clock = harness.Clock(record["wall_time_s"])
        if start == 0:
            calibration = gan_monitor.noise_seed(self.seed, 0, "calibration")
            self.files.save_samples(gan_monitor.calibrated_generator(step_fn.state, seed=calibration), 0, writer)
        try:
            step = loop.train(DigitTask(self, step_fn, record, writer), self._schedule(), start, self.progress, writer)
            status = "done"
        except harness.NonFiniteLoss as e:
            status, step = "failed", loop.latest_step()
            self.progress.message(
                f"{self.label}: loss became NaN/inf at {e}; stopped. The last good checkpoint "
                f"(step {step}) and every file written so far are kept."
            )
            record["failure"] = f"non-finite loss at {e}"
        finally:
            writer.close()
        if status == "done":
            record["wall_time_s"] = self.clock.elapsed()
        self.write_record(record, step, record["wall_time_s"], status)
        return self._result(record, status, step)

    def _schedule(self):
        cfg = self.gan_config
        every = {"sample": cfg.sample_every, "eval": cfg.eval_every if self.evaluator else 0, "checkpoint": cfg.checkpoint_every}
        return harness.Schedule(cfg.steps, every)

    def _result(self, record, status, step):
        generator = outputs.generator_path(self.config.output_dir, self.digit, self.run)
        return DigitResult(
            digit=self.digit,
            run=self.run,
            status=status,
            steps=step,
            wall_time_s=record.get("wall_time_s", 0.0),
            d_loss=record.get("last_d_loss", float("nan")),
            g_loss=record.get("last_g_loss", float("nan")),
            heldout_d_accuracy=record.get("heldout_d_accuracy", float("nan")),
            best_step=record.get("best_step"),
            best_frechet_distance=record.get("best_frechet_distance"),
            declined=bool(record.get("declined")),
            folder=self.folder,
            stopped_on_decline=bool(record.get("stopped_on_decline")),
            run_id=record.get("run_id"),
            generator=generator if os.path.exists(generator) else None,
            snapshots=tuple(outputs.snapshot_paths(self.config.output_dir, self.digit, self.run)),
        )


class DigitTask(harness.Task):
    """A digit's hooks in the harness: samples, quality selection, held-out checks and records.

    At each event the generator is made ready once (`gan_monitor.calibrated_generator`); the
    grid, the quality measurement, the held-out check and the saved models all
    use that one. Each event adds one row to metrics.csv.
    """

    def __init__(self, training, step_fn, record, writer):
        self.training, self.step_fn, self.state = training, step_fn, step_fn.state
        self.record, self.writer = record, writer
        self.selection = None
        if training.evaluator is not None:
            self.selection = training.selection()

    def train_steps(self, count):
        d_loss, g_loss, finite = self.step_fn.train_steps(count)
        return {"d_loss": d_loss, "g_loss": g_loss}, finite

    def after_steps(self, step, losses):
        self.record["last_d_loss"], self.record["last_g_loss"] = losses["d_loss"], losses["g_loss"]

    def on_events(self, step, due):
        training = self.training
        seed = gan_monitor.noise_seed(training.seed, step, "calibration")
        self.generator = gan_monitor.calibrated_generator(self.state, seed=seed)
        self.row = {"step": step, "d_loss": self.record["last_d_loss"], "g_loss": self.record["last_g_loss"]}
        if "sample" in due:
            training.files.save_samples(self.generator, step, self.writer)
        if "eval" in due:
            metrics, message, best = self.selection.measure(self.generator, step, self.record, self.writer)
            if best:
                training.files.save_generator(self.generator)
            training.progress.message(f"{training.label}: {message}")
            self.row.update(metrics)

    def before_checkpoint(self, step):
        """The held-out check (it moves D's batch-norm statistics, which the checkpoint holds), the saved models and the row.

        Everything made from the state at `step` is written before its checkpoint, so a
        kill or a full disk between the two redoes it all on resume: a finished run never
        has a snapshot too few or too many, nor a metrics row missing.
        """
        training, cfg = self.training, self.training.gan_config
        if step > cfg.steps - cfg.snapshots * cfg.checkpoint_every:
            training.files.save_snapshot(self.generator, step, keep=cfg.snapshots)
        if cfg.coverage_refresh and step % cfg.coverage_refresh == 0 and step < cfg.steps:
            training.refresh_coverage(self.state, self.generator, step)
        if self.selection is None:
            training.files.save_generator(self.generator)
        seed = gan_monitor.noise_seed(training.seed, step, "heldout")
        self.heldout = training.heldout_accuracy(self.state, self.generator, seed)
        training.progress.message(f"{training.label}: step {step}: held-out discriminator accuracy {self.heldout:.3f}")
        with self.writer.as_default(step=step):
            tf.summary.scalar("heldout_d_accuracy", self.heldout)
        self.elapsed = training.clock.elapsed()
        if self.row is not None:
            self.row.update(heldout_d_accuracy=self.heldout, elapsed_s=self.elapsed)
            self._append_row()

    def after_checkpoint(self, step):
        """run.json, which says how far the checkpoints go."""
        self.record["heldout_d_accuracy"] = self.heldout
        self.training.write_record(self.record, step, self.elapsed, "running")

    def after_events(self, step, due):
        if self.row is not None:
            self._append_row()
        if "eval" in due and self.record.get("declined") and self.training.gan_config.stop_on_decline:
            self.training.progress.message(f"{self.training.label}: stopping early (--stop-on-decline)")
            self.record["stopped_on_decline"] = True
            return True
        return False

    def _append_row(self):
        self.training.csv.append(self.row)
        self.row = None


def check_digits(config):
    """Reads back the files of every digit in `config.digits` that training will read.

    Raises:
      UserError: for the first damaged file (or changed setting), before any
        digit is trained.
    """
    for unit in units_of(config):
        for run in range(1, config.gan.runs_per_digit + 1):
            unit_training(config, unit, run=run).check()


def train_jobs(config, jobs, evaluator=None, progress=Progress, attempt=None):
    """Trains digit runs one after another in this process; yields a `DigitResult` each.

    Args:
      config: the whole `Config`.
      jobs: iterable of (digit, run, train_images, validation_images, negatives), uint8
        (n, 28, 28) (negatives: None, or the other digits' training images), as `jobs.jobs_of` makes them.
      evaluator: as `DigitTraining` takes it.
      progress: makes each digit's progress reporter, as `DigitTraining` takes it.
      attempt: as `DigitTraining` takes it (a cluster task's, which trains one job).
    """
    # One state and compiled step for all runs of a GanConfig (see GanState.reset); runs differ in it only
    # when one resumes in another precision than "auto" chooses here.
    shared = {}
    for unit, run, train, validation, negatives in jobs:
        training = unit_training(config, unit, train, validation, evaluator, progress, run, attempt, negatives)
        if training.gan_config not in shared:
            shared[training.gan_config] = gan_step.GanStep(training.new_state())
        yield training.train(shared[training.gan_config])


def unit_training(config, unit, train=None, validation=None, evaluator=None, progress=Progress, run=1, attempt=None, negatives=None):
    """The training of one job's unit: a `DigitTraining` for a digit, a `ConditionalTraining` for a family's name."""
    if isinstance(unit, str):
        return ConditionalTraining(config, unit, train, validation, evaluator, progress, run, attempt)
    return DigitTraining(config, unit, train, validation, evaluator, progress, run, attempt, negatives)


class ConditionalTraining(DigitTraining):
    """Training of one run of a conditional family's network, all digits at once, into output/<family>[/run-r]/.

    The same files as a digit's run (outputs.py): its sample grid holds a row
    per digit, its quality is the mean over the digits it trains, its held-out
    check judges every digit's validation images.

    Args:
      family: the family's name (config.CONDITIONAL_FAMILIES), which names the folder.
      train, validation: (uint8 (n, 28, 28) images, int (n,) digits), as jobs.jobs_of makes them; None when
        only `check` is needed.
      The rest as `DigitTraining` takes them.
    """

    def __init__(self, config, family, train=None, validation=None, evaluator=None, progress=Progress, run=1, attempt=None):
        super().__init__(
            config, family, None if train is None else train[0], None if validation is None else validation[0], evaluator, progress, run, attempt
        )
        if train is not None:
            self.train_labels = np.asarray(train[1], np.int32)
            self.validation_labels = np.asarray(validation[1], np.int32)

    def _seed(self):
        return CONDITIONAL_SEED_OFFSET + run_seed(self.config.seed, 0, self.run)

    def _first_record(self):
        return {"digits": list(self.config.digits)}

    def check(self):
        """As `DigitTraining.check`, and refuses to resume a network trained on other digits."""
        record, checkpoint = super().check()
        if record and record.get("digits") is not None and list(record["digits"]) != list(self.config.digits):
            listed = ",".join(map(str, record["digits"]))
            raise UserError(f"{self.folder} trains digits {listed}: give --train-digits {listed}, or {self.remedy}")
        return record, checkpoint

    def _files(self):
        return gan_files.ConditionalFiles(self.config, self.digit, self.remedy, self.run)

    def selection(self):
        validation = {int(d): self.validation_images[self.validation_labels == d] for d in np.unique(self.validation_labels)}
        return gan_monitor.Selection(self.gan_config, self.evaluator, validation, self.seed, conditional=True)

    def heldout_accuracy(self, state, generator, seed):
        return gan_monitor.heldout_accuracy(
            state, generator, self.validation_images, self.gan_config.heldout_samples, seed, self.validation_labels
        )

    def _result(self, record, status, step):
        result = super()._result(record, status, step)
        result.labels = tuple(int(d) for d in np.unique(self.train_labels)) if self.train_labels is not None else ()
        return result


def train_digits(config, mnist, evaluator=None, held=False):
    """Trains every digit in `config.digits`, one after another in this process; prints a summary.

    Args:
      config: the whole `Config`.
      mnist: a `data.Mnist`.
      evaluator: an `evaluation.Evaluator`; loaded (or trained once) when
        None and `config.gan.eval_every` > 0.
      held: the caller holds the runs' locks (`job_locks`) already.

    Returns:
      0 when every digit finished, 1 when any stopped on a non-finite loss.

    Raises:
      UserError: another command trains one of these runs in the same folder (see locks.py), or a damaged file.
    """
    with locks.holding([] if held else job_locks(config)):
        generators.prepare_training(config)
        check_digits(config)
        if evaluator is None and config.gan.uses_evaluator:
            from mnistgan import evaluation  # Deferred: only runs that select need it.

            evaluator = evaluation.load_or_train_evaluator(config.output_dir, mnist, seed=config.seed)
        results = list(train_jobs(config, mnist_jobs(config, mnist), evaluator))
        generators.record_training(config.output_dir, results)
    print_summary(results)
    return exit_status(results)
