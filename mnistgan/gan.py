"""The per-digit DCGAN trainer: one GAN per digit, trained on that digit alone.

A run of digit d writes into `output/digit-d/` (see outputs.py for names):
generator.keras, samples/step-NNNNNN.png, evolution.png and evolution.npz,
metrics.csv, logs/ (TensorBoard), checkpoints/ and run.json.
"""

import dataclasses
import os
import shutil
import time
import uuid

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mnistgan import augment, config as config_lib, data, images, losses, networks, optimizers, outputs
from mnistgan.progress import Progress
from mnistgan.results import DigitResult, exit_status, print_summary

EVOLUTION_ROWS = 4
EVOLUTION_COLUMNS = 12
GRID_SIZE = 64
# Steps run inside one compiled call between looks from Python.
CHUNK = 25
CSV_FIELDS = (
    "step", "d_loss", "g_loss", "heldout_d_accuracy", "frechet_distance", "class_precision", "precision", "recall",
    "elapsed_s",
)  # fmt: skip
# Settings a checkpoint cannot be resumed under once they change (declared in config.GanConfig).
RESUME_KEYS = config_lib.resume_keys(config_lib.GanConfig)
VALUES_BEFORE_RECORDED = config_lib.values_before_recorded(config_lib.GanConfig)
# What the noise of a step's samples is for: each purpose draws its own (see noise_seed).
NOISE_PURPOSES = ("calibration", "heldout", "quality")


class NonFiniteLoss(Exception):
    """A loss became NaN or inf; the digit stops at its last good checkpoint."""


class DigitGan:
    """Both networks, their optimizers, the step and the random state of one digit.

    Everything stateful is tracked by `self.checkpoint`, so a restore puts the
    run back exactly where it was.

    Args:
      config: a `GanConfig`.
      real_images: float32 (n, 28, 28, 1) in [0, 1], the digit's training images.
      seed: seeds the weights, the noise and the batch choice.
    """

    def __init__(self, config, real_images, seed):
        self.config = config
        self.d_loss_fn, self.g_loss_fn = losses.LOSSES[config.loss]
        self.generator, self.discriminator = self._build_networks()
        use_ema = config.ema_momentum > 0
        self.average_generator = None  # Holds the weight averages for sampling; never trained.
        if use_ema:
            with networks.dtype_policy(config.precision):
                self.average_generator = networks.build_generator(
                    config.latent_dim, config.leaky_slope, "average_generator", config.batch_norm_momentum
                )
        self.g_optimizer = optimizers.FusedAdam(
            config.learning_rate, beta_1=config.beta1, use_ema=use_ema, ema_momentum=config.ema_momentum or 0.99
        )
        self.d_optimizer = optimizers.FusedAdam(self._d_learning_rate(), beta_1=config.beta1)
        # Build the slots now so a restore fills them instead of deferring.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        # A variable, not a constant, so `reset` can swap in another digit.
        self.real = tf.Variable(real_images, shape=tf.TensorShape([None, *networks.IMAGE_SHAPE]), trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.rng = tf.random.Generator.from_seed(seed)
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            rng=self.rng,
            # tf.train.Checkpoint does not follow Keras SeedGenerators (dropout's
            # random state); without them a resumed run drifts from a straight one.
            layer_seeds=networks.seed_states(self.discriminator) + networks.seed_states(self.generator),
        )
        self.reset(real_images, seed)

    def reset(self, real_images, seed):
        """Starts a fresh run on `real_images`: new weights from `seed`, empty optimizers, step 0.

        The compiled step is kept. Every trace of a Keras optimizer step stays
        in TensorFlow's gradient registry for the life of the process (about
        120 MiB each here), so the digits of one run share one `DigitGan`.
        """
        keras.utils.set_random_seed(seed)
        for model, new in zip((self.generator, self.discriminator), self._build_networks()):
            for variable, value in zip(model.variables, new.variables):  # Includes the dropout seed state.
                variable.assign(value)
        for optimizer, rate in ((self.g_optimizer, self.config.learning_rate), (self.d_optimizer, self._d_learning_rate())):
            for variable in optimizer.variables:  # Step count, moments and weight averages.
                variable.assign(tf.zeros_like(variable))
            optimizer.learning_rate = rate  # The one that does not start at zero.
        self.real.assign(real_images)
        self.step.assign(0)
        self.rng.reset_from_seed(seed)

    def _build_networks(self):
        """A new (generator, discriminator) pair with freshly drawn weights."""
        cfg = self.config
        with networks.dtype_policy(cfg.precision):
            return (
                networks.build_generator(cfg.latent_dim, cfg.leaky_slope, batch_norm_momentum=cfg.batch_norm_momentum),
                networks.build_discriminator(cfg.leaky_slope, minibatch_std_group=cfg.minibatch_std_group),
            )

    def _d_learning_rate(self):
        return self.config.d_learning_rate or self.config.learning_rate

    def _train_step(self):
        batch = self.config.batch_size
        index = self.rng.uniform([batch], 0, tf.shape(self.real)[0], dtype=tf.int32)
        real = tf.gather(self.real, index)
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_loss = self._d_loss(real, self.generator(self._noise(), training=True))
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        g_vars = self.generator.trainable_variables
        z = self._noise()
        with tf.GradientTape() as tape:
            _, fake_logits = self._judge_pair(
                real, self.generator(z, training=True), need_real=False, dropout=self.config.generator_step_dropout
            )
            g_loss = self.g_loss_fn(fake_logits)
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        self.step.assign_add(1)
        return d_loss, g_loss

    def _noise(self):
        return self.rng.normal([self.config.batch_size, self.config.latent_dim])

    def _d_loss(self, real, fake):
        """D's loss on a real and a fake batch, with the R1 penalty when `r1_gamma` > 0."""
        gamma = self.config.r1_gamma
        real = self._augment(real)
        with tf.GradientTape(watch_accessed_variables=False) as input_tape:
            input_tape.watch(real)
            real_logits, fake_logits = self._judge_pair(real, fake, augmented=True)
            real_total = tf.reduce_sum(real_logits)  # Inside the tape, so its gradient at `real` exists.
        loss = self.d_loss_fn(real_logits, fake_logits)
        if gamma > 0:
            loss += gamma / 2 * losses.r1_penalty(input_tape.gradient(real_total, real))
        return loss

    def _augment(self, images):
        return augment.diff_augment(images, self.config.augment, self.rng)

    def _judge_pair(self, real, fake, need_real=True, augmented=False, dropout=True):
        """D's logits (training mode) for a real and a fake batch of equal size.

        With `mixed_batches`, both go through D as one batch, so D's batch norm
        keeps the difference between them (a grey fake batch stays greyer than
        the real one). Otherwise each is its own batch, as in the original, and
        the generator step shows D the fake batch alone. Both batches are
        augmented here (`augment`) unless `augmented` says `real` already is.
        `dropout` False switches D's dropout off (batch statistics stay).
        """
        fake = self._augment(fake)
        if not augmented and (need_real or self.config.mixed_batches):
            real = self._augment(real)
        if self.config.mixed_batches:
            logits = self._discriminate(tf.concat([real, fake], axis=0), dropout)
            return logits[: tf.shape(real)[0]], logits[tf.shape(real)[0] :]
        real_logits = self._discriminate(real, dropout) if need_real else None
        return real_logits, self._discriminate(fake, dropout)

    def _discriminate(self, images, dropout=True):
        """D's logits with batch statistics, and with dropout unless `dropout` is False."""
        if dropout:
            return self.discriminator(images, training=True)
        x = images
        for layer in self.discriminator.layers[1:]:  # A chain of layers after the input.
            x = layer(x, training=not isinstance(layer, keras.layers.Dropout))
        return x

    @tf.function
    def train_steps(self, count):
        """Runs `count` (int32 tensor) steps in one call.

        Returns:
          (d_loss, g_loss, finite): the last step's losses and whether every
          loss of the chunk was finite.
        """
        d_loss = g_loss = tf.constant(0.0)
        finite = tf.constant(True)
        for _ in tf.range(count):
            d_loss, g_loss = self._train_step()
            finite = finite & tf.math.is_finite(d_loss) & tf.math.is_finite(g_loss)
        return d_loss, g_loss, finite

    def sampler(self, seed, samples=1024):
        """The generator to sample and save now, in inference mode, ready to use.

        It is the average of the generator's recent weights (`ema_momentum`),
        or the generator itself when averaging is off. With
        `recalibrate_batch_norm` (and always for the average, which has no
        statistics of its own), its batch-norm moving statistics are set to
        those of its current weights: moving averages lag behind fast-changing
        weights, so early in training inference mode would draw noise while
        training mode draws digits. Training never reads those statistics.

        Args:
          seed: seeds the `samples` noise vectors that measure the statistics
            (an int or a list of ints, as numpy's default_rng takes).
        """
        if self.average_generator is None:
            if not self.config.recalibrate_batch_norm:
                return self.generator
            model = self.generator
        else:
            model = self.average_generator
            self.g_optimizer.finalize_variable_values(model.trainable_variables)
        layers = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
        probe = keras.Model(model.input, [layer.input for layer in layers])
        z = np.random.default_rng(seed).standard_normal((samples, self.config.latent_dim)).astype(np.float32)
        for layer, x in zip(layers, probe(z, training=True)):
            x = tf.cast(x, tf.float32)
            axes = list(range(len(x.shape) - 1))
            layer.moving_mean.assign(tf.reduce_mean(x, axes))
            layer.moving_variance.assign(tf.math.reduce_variance(x, axes))
        return model

    def _judge(self, images):
        """D's logits as D judges while training: batch statistics, but no dropout.

        With separate real and fake batches, D's batch-norm moving averages (a
        mix of both) fit neither, so inference mode would misjudge.
        """
        return self._discriminate(images, dropout=False).numpy()

    def heldout_accuracy(self, sampler, real_images, count, seed):
        """Discriminator accuracy on held-out real images vs fresh generated ones.

        Args:
          sampler: the generator that draws the fakes, from `sampler()`.
          real_images: float32 (n, 28, 28, 1) validation images of the digit.
          count: how many generated images to judge.

        Returns:
          The share judged correctly, in [0, 1]; 0.5 means D cannot tell them apart.
        """
        z = np.random.default_rng(seed).standard_normal((count, self.config.latent_dim)).astype(np.float32)
        fake_images = sampler(z, training=False)
        if self.config.mixed_batches:
            logits = self._judge(tf.concat([real_images, fake_images], axis=0))
            real_logits, fake_logits = logits[: len(real_images)], logits[len(real_images) :]
        else:
            real_logits, fake_logits = self._judge(real_images), self._judge(fake_images)
        correct = np.sum(real_logits > 0) + np.sum(fake_logits <= 0)
        return float(correct) / (len(real_logits) + len(fake_logits))


def noise_seed(run_seed, step, purpose):
    """The seed of the noise drawn at `step` for `purpose` (one of NOISE_PURPOSES).

    Each purpose gets its own stream, so the samples a quality or held-out
    check scores are independent of those that calibrated batch norm.
    """
    return [run_seed, step, NOISE_PURPOSES.index(purpose)]


def fixed_noise(config, seed, digit, count):
    """The same noise vectors at every sample point of one digit's run, across resumes."""
    return np.random.default_rng([seed, digit, 7]).standard_normal((count, config.latent_dim)).astype(np.float32)


class DigitRun:
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
    """

    def __init__(self, config, digit, train_images=None, validation_images=None, evaluator=None, progress=Progress):
        self.config = config
        self.make_progress = progress
        self.evaluator = evaluator if config.gan.eval_every > 0 else None
        self.gan_config = config.gan
        self.digit = digit
        self.folder = outputs.digit_dir(config.output_dir, digit)
        self.run_json = os.path.join(self.folder, "run.json")
        self.checkpoint_dir = os.path.join(self.folder, "checkpoints")
        self.remedy = f"start digit {digit} over: ./main.py --train-digits {digit} --restart"
        self.csv = outputs.MetricsCsv(
            outputs.digit_metrics_path(config.output_dir, digit), CSV_FIELDS, f"delete it (its rows are lost) or {self.remedy}"
        )
        self.evolution_npz = os.path.join(self.folder, "evolution.npz")
        self.train_images = None if train_images is None else data.to_float(train_images)
        self.validation_images = None if validation_images is None else data.to_float(validation_images)
        self.seed = config.seed * 10 + digit

    # ---- run records ----

    def _write_record(self, record, step, wall_time_s, status):
        record.update(
            digit=self.digit,
            seed=self.config.seed,
            config=dataclasses.asdict(self.gan_config),
            steps_done=int(step),
            target_steps=self.gan_config.steps,
            wall_time_s=round(wall_time_s, 2),
            steps_per_second=round(self.progress.steps_per_second(step), 2),
            status=status,
            peak_memory_mb=outputs.peak_memory_mb(),
            versions=outputs.library_versions(),
        )
        outputs.write_json(self.run_json, record)

    # ---- samples ----

    def _save_samples(self, sampler, step, writer):
        noise = fixed_noise(self.gan_config, self.config.seed, self.digit, GRID_SIZE)
        generated = data.to_uint8(sampler(noise, training=False).numpy())
        images.save_grid(outputs.sample_path(self.config.output_dir, self.digit, step), generated)
        steps, snapshots = self._load_evolution()
        keep = steps < step
        steps = np.append(steps[keep], step)
        snapshots = np.concatenate([snapshots[keep], generated[np.newaxis, :EVOLUTION_ROWS]])
        with outputs.atomic_path(self.evolution_npz) as tmp:
            np.savez(tmp, steps=steps, images=snapshots)
        columns = images.pick_columns(len(steps), EVOLUTION_COLUMNS)
        strip = images.evolution_strip(steps[columns], snapshots[columns])
        images.save_png(outputs.evolution_path(self.config.output_dir, self.digit), strip)
        with writer.as_default(step=step):
            tf.summary.image("samples", data.to_float(images.tile(generated, 8, 1))[np.newaxis], max_outputs=1)

    def _load_evolution(self):
        """The evolution snapshots so far: int (n,) steps and uint8 (n, EVOLUTION_ROWS, 28, 28) images."""
        remedy = f"delete it (the evolution strip then starts afresh) or {self.remedy}"
        arrays = outputs.read_npz(self.evolution_npz, remedy, ("steps", "images"))
        if arrays is None:
            return np.zeros((0,), np.int64), np.zeros((0, EVOLUTION_ROWS, 28, 28), np.uint8)
        steps, snapshots = arrays["steps"], arrays["images"]
        if steps.ndim != 1 or steps.dtype.kind != "i" or snapshots.shape != (len(steps), EVOLUTION_ROWS, 28, 28):
            raise outputs.damaged(self.evolution_npz, f"arrays of shape {steps.shape} and {snapshots.shape}", remedy)
        return steps, snapshots.astype(np.uint8)

    def _save_generator(self, sampler):
        with outputs.atomic_path(outputs.generator_path(self.config.output_dir, self.digit)) as tmp:
            sampler.save(tmp)

    # ---- the loop ----

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
            self.run_json, self.gan_config, self.config.seed, RESUME_KEYS, VALUES_BEFORE_RECORDED, self.remedy
        )
        checkpoint = outputs.latest_checkpoint(self.checkpoint_dir, self.remedy)
        if not self._finished(record, outputs.checkpoint_step(checkpoint)):
            self.csv.rows()
            self._load_evolution()
        return record, checkpoint

    def _finished(self, record, step):
        """Whether the run ended (all steps, or stopped by --stop-on-decline) with its generator saved."""
        stopped = bool(record and record.get("stopped_on_decline")) and self.gan_config.stop_on_decline
        saved = os.path.exists(outputs.generator_path(self.config.output_dir, self.digit))
        return (step >= self.gan_config.steps or stopped) and saved

    def train(self, gan=None):
        """Trains (or resumes) this digit up to `config.gan.steps`. Returns a `DigitResult`.

        A digit stopped by `stop_on_decline` stays stopped while that setting
        is on; without it, it resumes.

        Args:
          gan: a `DigitGan` of the same `GanConfig` to reuse (it is reset to
            this digit); a new one when None.
        """
        cfg = self.gan_config
        if self.config.restart and os.path.isdir(self.folder):
            shutil.rmtree(self.folder)
        record, checkpoint = self.check()
        os.makedirs(self.folder, exist_ok=True)
        record = record or {"run_id": uuid.uuid4().hex[:12], "wall_time_s": 0.0}
        if gan is None:
            gan = DigitGan(cfg, self.train_images, self.seed)
        else:
            gan.reset(self.train_images, self.seed)
        manager = tf.train.CheckpointManager(gan.checkpoint, self.checkpoint_dir, max_to_keep=2)
        if checkpoint:
            outputs.restore_checkpoint(gan.checkpoint, checkpoint, self.remedy)
        start = int(gan.step.numpy())
        if self._finished(record, start):
            logging.info("digit %d: already trained (%d steps); skipping", self.digit, start)
            return self._result(record, "done", start)
        record.pop("stopped_on_decline", None)  # Resumed without --stop-on-decline.
        if start:
            logging.info("digit %d: resuming from step %d", self.digit, start)
        self.csv.trim(start)
        writer = tf.summary.create_file_writer(os.path.join(self.folder, "logs"))
        self.progress = self.make_progress(f"digit {self.digit}", start, cfg.steps)
        self.wall_before, self.session_start = record["wall_time_s"], time.monotonic()
        if start == 0:
            self._save_samples(gan.sampler(seed=noise_seed(self.seed, 0, "calibration")), 0, writer)
        try:
            step = self._loop(gan, manager, record, start, writer)
            status = "done"
        except NonFiniteLoss as e:
            status, step = "failed", outputs.checkpoint_step(manager.latest_checkpoint)
            self.progress.message(
                f"digit {self.digit}: loss became NaN/inf at {e}; stopped. The last good checkpoint "
                f"(step {step}) and every file written so far are kept."
            )
            record["failure"] = f"non-finite loss at {e}"
        finally:
            writer.close()
        if status == "done":
            record["wall_time_s"] = self.wall_before + time.monotonic() - self.session_start
        self._write_record(record, step, record["wall_time_s"], status)
        return self._result(record, status, step)

    def _loop(self, gan, manager, record, step, writer):
        """Trains from `step` to the end (or an early stop); returns the last step."""
        cfg = self.gan_config
        while step < cfg.steps:
            count = min(
                CHUNK,
                cfg.steps - step,
                _to_next(step, cfg.sample_every),
                _to_next(step, cfg.checkpoint_every),
                _to_next(step, cfg.eval_every) if self.evaluator else CHUNK,
            )
            d_loss, g_loss, finite = gan.train_steps(tf.constant(count, tf.int32))
            if not bool(finite):
                raise NonFiniteLoss(f"step {step + 1}-{step + count}")
            step += count
            record["last_d_loss"], record["last_g_loss"] = float(d_loss), float(g_loss)
            self.progress.update(step, d_loss=float(d_loss), g_loss=float(g_loss))
            with writer.as_default(step=step):
                tf.summary.scalar("d_loss", float(d_loss))
                tf.summary.scalar("g_loss", float(g_loss))
            last = step == cfg.steps
            due = {
                "sample": step % cfg.sample_every == 0 or last,
                "checkpoint": step % cfg.checkpoint_every == 0 or last,
                "eval": self.evaluator is not None and (step % cfg.eval_every == 0 or last),
            }
            if not any(due.values()):
                continue
            sampler = gan.sampler(seed=noise_seed(self.seed, step, "calibration"))
            row = {"step": step, "d_loss": record["last_d_loss"], "g_loss": record["last_g_loss"]}
            if due["sample"]:
                self._save_samples(sampler, step, writer)
            if due["eval"]:
                row.update(self._measure_quality(sampler, step, record, writer))
            if due["checkpoint"]:
                row.update(self._checkpoint(gan, sampler, manager, step, record, writer))
            self.csv.append(row)
            if due["eval"] and record.get("declined") and cfg.stop_on_decline:
                self.progress.message(f"digit {self.digit}: stopping early (--stop-on-decline)")
                record["stopped_on_decline"] = True
                if not due["checkpoint"]:
                    self._checkpoint(gan, sampler, manager, step, record, writer)
                return step
        return step

    def _checkpoint(self, gan, sampler, manager, step, record, writer):
        """Held-out check, checkpoint, run.json; the generator too when nothing selects it."""
        heldout = gan.heldout_accuracy(
            sampler, self.validation_images, self.gan_config.heldout_samples, noise_seed(self.seed, step, "heldout")
        )
        self.progress.message(f"digit {self.digit}: step {step}: held-out discriminator accuracy {heldout:.3f}")
        with writer.as_default(step=step):
            tf.summary.scalar("heldout_d_accuracy", heldout)
        manager.save(checkpoint_number=step)
        if self.evaluator is None:
            self._save_generator(sampler)
        if step > self.gan_config.steps - self.gan_config.snapshots * self.gan_config.checkpoint_every:
            with outputs.atomic_path(outputs.snapshot_path(self.config.output_dir, self.digit, step)) as tmp:
                sampler.save(tmp)
        elapsed = self.wall_before + time.monotonic() - self.session_start
        record["heldout_d_accuracy"] = heldout
        self._write_record(record, step, elapsed, "running")
        return {"heldout_d_accuracy": heldout, "elapsed_s": elapsed}

    def _measure_quality(self, sampler, step, record, writer):
        """Measures the generator with the evaluator; keeps it if it is the best so far."""
        from mnistgan import evaluation  # Deferred: only runs that select need it.

        cfg = self.gan_config
        candidates = evaluation.generate(sampler, cfg.eval_samples, seed=noise_seed(self.seed, step, "quality"))
        quality = evaluation.measure(self.evaluator, self.validation_images, candidates, self.digit)
        with writer.as_default(step=step):
            for name, value in quality.as_dict().items():
                tf.summary.scalar(f"quality/{name}", value)
        distance = quality.frechet_distance
        best = record.get("best_frechet_distance")
        if best is None or distance < best:
            self._save_generator(sampler)
            record.update(best_step=step, best_frechet_distance=round(distance, 5), best_quality=quality.as_dict())
        previous = record.get("last_frechet_distance")
        record["worse_in_a_row"] = record.get("worse_in_a_row", 0) + 1 if previous is not None and distance > previous else 0
        record["last_frechet_distance"] = round(distance, 5)
        message = f"digit {self.digit}: step {step}: Fréchet distance {distance:.2f} (best {record['best_frechet_distance']:.2f} at step {record['best_step']})"
        if record["worse_in_a_row"] >= cfg.decline_patience:
            record["declined"] = True
            message += f"; quality fell {record['worse_in_a_row']} measurements in a row"
        self.progress.message(message)
        return {k: getattr(quality, k) for k in ("frechet_distance", "class_precision", "precision", "recall")}

    def _result(self, record, status, step):
        return DigitResult(
            digit=self.digit,
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
        )


def _to_next(step, every):
    return every - step % every


def check_digits(config):
    """Reads back the files of every digit in `config.digits` that training will read.

    Raises:
      UserError: for the first damaged file (or changed setting), before any
        digit is trained.
    """
    for digit in config.digits:
        DigitRun(config, digit).check()


def train_jobs(config, jobs, evaluator=None, progress=Progress):
    """Trains digits one after another in this process; yields a `DigitResult` each.

    Args:
      config: the whole `Config`.
      jobs: iterable of (digit, train_images, validation_images), uint8 (n, 28, 28),
        as `data.per_digit` makes them.
      evaluator: as `DigitRun` takes it.
      progress: makes each digit's progress reporter, as `DigitRun` takes it.
    """
    shared_gan = None  # One for all digits: see DigitGan.reset.
    for digit, train_images, validation_images in jobs:
        run = DigitRun(config, digit, train_images, validation_images, evaluator, progress)
        if shared_gan is None:
            shared_gan = DigitGan(config.gan, run.train_images, run.seed)
        yield run.train(shared_gan)


def train_digits(config, mnist, evaluator=None):
    """Trains every digit in `config.digits`, one after another in this process; prints a summary.

    Args:
      config: the whole `Config`.
      mnist: a `data.Mnist`.
      evaluator: an `evaluation.Evaluator`; loaded (or trained once) when
        None and `config.gan.eval_every` > 0.

    Returns:
      0 when every digit finished, 1 when any stopped on a non-finite loss.
    """
    check_digits(config)
    if evaluator is None and config.gan.eval_every > 0:
        from mnistgan import evaluation  # Deferred: only runs that select need it.

        evaluator = evaluation.load_or_train_evaluator(config.output_dir, mnist, seed=config.seed)
    results = list(train_jobs(config, data.per_digit(mnist, config.digits), evaluator))
    print_summary(results)
    return exit_status(results)
