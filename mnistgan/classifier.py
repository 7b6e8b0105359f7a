"""The classifier experiment: Deep MNIST trained on generated digits, real ones, or both.

`synthetic` streams fresh batches from the generators that training listed in
output/generators.json (asked of `generators.classifier_samplers`; every batch
is new noise, labels balanced), `real` reads the 55,000 training images (or,
with `real_per_digit`, the first N of each digit), and `real+synthetic` puts
both in every batch, the generated share set by `synthetic_share`.
Validation images drive the progress display; the test images are used once,
at the end, for the reported numbers. Each run writes
`output/classifier-<data>/` (model.keras, confusion.png, metrics.csv, logs/,
checkpoints/, run.json) and appends a record to `output/results.jsonl`.
"""

import dataclasses
import math
import os
import shutil
import time
import uuid

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mnistgan import config as config_lib, data, environment, generators, harness, images, locks, networks, optimizers, outputs, precision
from mnistgan.errors import UserError
from mnistgan.progress import Progress

CSV_FIELDS = ("step", "loss", "validation_accuracy", "elapsed_s")
RESUME_KEYS = config_lib.resume_keys(config_lib.ClassifierConfig)
# What runs recorded before a setting existed trained with (a finished run of an older version stays finished).
VALUES_BEFORE_RECORDED = config_lib.values_before_recorded(config_lib.ClassifierConfig)
# Only a real+synthetic run draws by the share: the other sources resume under any.
MIXED_ONLY_KEYS = ("synthetic_share",)
# The mixed stream's shuffle draws from its own generator, seeded this far from the generated images' one.
MIX_SEED_OFFSET = 7919


# ---- the synthetic stream ----


class SyntheticStream:
    """Fresh labelled batches from the samplers of each digit, built inside the graph.

    Generating five images at a time from each of ten generators is bound by
    per-operation overhead, so the stream draws `batches_per_draw` batches at
    once (one larger call per generator) and hands them out one by one. Every
    image is still drawn from new noise and used once. Within a batch,
    per-digit counts differ by at most one and the extra images rotate
    between digits (exactly balanced when batch_size is a multiple of 10).

    Args:
      samplers: ten lists, digit d's at index d, of `generators.Sampler`s that
        share the digit's images equally (as `generators.classifier_samplers`
        gives them; each feeds its model its own noise scale and label).
      batch_size: images per batch.
      seed: seeds the noise; the state is a `tf.random.Generator` so a
        checkpoint can hold it (`checkpoint_state`).
      batches_per_draw: batches generated per call of each generator.
    """

    def __init__(self, samplers, batch_size, seed, batches_per_draw=50):
        self.samplers = [list(digit_samplers) for digit_samplers in samplers]
        self.batch_size = batch_size
        self.per_digit = math.ceil(batch_size / len(self.samplers))
        self.batches_per_draw = batches_per_draw
        self.rng = tf.random.Generator.from_seed(seed)
        self.images = tf.Variable(tf.zeros([batches_per_draw * batch_size, *networks.IMAGE_SHAPE]), trainable=False)
        self.labels = tf.Variable(tf.zeros([batches_per_draw * batch_size], tf.int32), trainable=False)
        self.cursor = tf.Variable(batches_per_draw, trainable=False)  # Batches handed out of the draw: all.

    def checkpoint_state(self):
        """What a checkpoint must hold for a resumed run to draw the same batches."""
        return {"stream_rng": self.rng, "stream_images": self.images, "stream_labels": self.labels, "stream_cursor": self.cursor}

    def __call__(self):
        """Returns float32 (batch, 28, 28, 1) in [0, 1] and int32 (batch,) labels."""
        tf.cond(self.cursor >= self.batches_per_draw, self.draw, lambda: None)
        start = self.cursor * self.batch_size
        batch = self.images[start : start + self.batch_size], self.labels[start : start + self.batch_size]
        with tf.control_dependencies(batch):
            self.cursor.assign_add(1)
        return batch

    def _digit_images(self, samplers, count):
        """float32 (count, 28, 28, 1): equal shares from each sampler, in random order."""
        share = math.ceil(count / len(samplers))
        images = [sampler.sample(self.rng, share) for sampler in samplers]
        if len(samplers) == 1:
            return images[0]
        order = tf.argsort(self.rng.uniform([share * len(samplers)]))[:count]
        return tf.gather(tf.concat(images, axis=0), order)

    def draw(self):
        """Generates the next `batches_per_draw` batches into the stream's buffer."""
        draws, per_digit, digits = self.batches_per_draw, self.per_digit, len(self.samplers)
        generated = tf.stack([self._digit_images(samplers, draws * per_digit) for samplers in self.samplers])
        # generated: (digits, draws * per_digit, 28, 28, 1)
        generated = tf.transpose(tf.reshape(generated, [digits, draws, per_digit, *networks.IMAGE_SHAPE]), [1, 0, 2, 3, 4, 5])
        # Deal each batch round-robin over its own random digit order: the digits
        # that get one more image in a batch of uneven size change from batch to batch.
        order = tf.cast(tf.argsort(self.rng.uniform([draws, digits]), axis=1), tf.int32)  # (draws, digits)
        dealt = tf.transpose(tf.gather(generated, order, batch_dims=1), [0, 2, 1, 3, 4, 5])  # (draws, per_digit, digits, ...)
        images = tf.reshape(dealt, [draws, per_digit * digits, *networks.IMAGE_SHAPE])[:, : self.batch_size]
        labels = tf.reshape(tf.tile(order[:, tf.newaxis], [1, per_digit, 1]), [draws, -1])[:, : self.batch_size]
        self.images.assign(tf.reshape(images, self.images.shape))
        self.labels.assign(tf.reshape(labels, [-1]))
        self.cursor.assign(0)


class MixedStream(SyntheticStream):
    """Batches of real training images and fresh generated ones (`--data real+synthetic`), in random order.

    The generated part is this `SyntheticStream` drawing `generated` images per
    batch (digits balanced within one, as there); the real part is the next batch
    of `real_next`, as `real_batches` makes it. Each batch shuffles the two
    together, inside the compiled step, so no position says which kind an image
    is. A checkpoint holds the generated stream's state and the shuffle's; the
    real part is the same from any step by itself, so a resumed run draws what a
    straight one would.

    Args:
      samplers: as `SyntheticStream` takes them.
      generated: generated images per batch, 1 or more.
      real_next: returns float32 (real, 28, 28, 1) in [0, 1] and int32 (real,) labels, real >= 1.
      seed: seeds the generated images and the shuffle.
    """

    def __init__(self, samplers, generated, real_next, seed, batches_per_draw=50):
        super().__init__(samplers, generated, seed, batches_per_draw)
        self.real_next = real_next
        self.mix_rng = tf.random.Generator.from_seed(seed + MIX_SEED_OFFSET)  # Apart from the generated images' noise.

    def checkpoint_state(self):
        return {**super().checkpoint_state(), "mix_rng": self.mix_rng}

    def __call__(self):
        """Returns float32 (generated + real, 28, 28, 1) in [0, 1] and int32 (generated + real,) labels, shuffled together."""
        generated_images, generated_labels = super().__call__()
        real_images, real_labels = self.real_next()
        images = tf.concat([generated_images, real_images], axis=0)
        labels = tf.concat([generated_labels, tf.cast(real_labels, tf.int32)], axis=0)
        order = tf.argsort(self.mix_rng.uniform(tf.shape(labels)))
        return tf.gather(images, order), tf.gather(labels, order)


# ---- training ----


class ClassifierTrainer:
    """The classifier, its optimizer and step; `train_steps` runs compiled chunks.

    Args:
      config: a `ClassifierConfig`.
      next_batch: a function returning (images, labels) tensors, callable in a
        tf.function: a `SyntheticStream` or `next` on a tf.data iterator.
      seed: seeds the weights and dropout.
    """

    def __init__(self, config, next_batch, seed):
        keras.utils.set_random_seed(seed)
        with networks.dtype_policy(config.precision):
            self.model = networks.build_classifier(feature_size=config.feature_size)
        self.optimizer = optimizers.FusedAdam(config.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self.next_batch = next_batch
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        tracked = dict(
            model=self.model, optimizer=self.optimizer, step=self.step, layer_seeds=networks.seed_states(self.model)
        )
        if isinstance(next_batch, SyntheticStream):
            tracked.update(next_batch.checkpoint_state())
        self.checkpoint = tf.train.Checkpoint(**tracked)

    @tf.function
    def train_steps(self, count):
        """Runs `count` (int32 tensor) steps; returns the last loss and whether all were finite."""
        loss = tf.constant(0.0)
        finite = tf.constant(True)
        variables = self.model.trainable_variables
        for _ in tf.range(count):
            batch_images, batch_labels = self.next_batch()
            with tf.GradientTape() as tape:
                logits = self.model(batch_images, training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch_labels, logits=logits)
                )
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            self.step.assign_add(1)
            finite = finite & tf.math.is_finite(loss)
        return loss, finite

    def predict(self, float_images):
        """float32 (n, 28, 28, 1) in [0, 1] -> int (n,) predicted digits."""
        logits = self.model.predict(float_images, batch_size=500, verbose=0)
        return np.argmax(logits, axis=1)


def validation_accuracy(trainer, mnist):
    """The share of the 5,000 validation images the trained classifier gets right, in [0, 1]."""
    predictions = trainer.predict(data.to_float(mnist.validation_images))
    return float(np.mean(predictions == mnist.validation_labels))


def accuracy_report(predictions, labels):
    """Test numbers: overall and per-digit accuracy and the 10x10 confusion matrix."""
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    counts = confusion.sum(axis=1)
    per_digit = np.where(counts > 0, np.diag(confusion) / np.maximum(counts, 1), np.nan)
    return {
        "test_accuracy": float(np.mean(predictions == labels)),
        # None for a digit with no test images (JSON has no NaN).
        "per_digit_accuracy": [None if np.isnan(a) else round(float(a), 5) for a in per_digit],
        "min_digit": int(np.nanargmin(per_digit)),
        "confusion": confusion.tolist(),
    }


def seconds_per_batch(stream, repeats=5):
    """Time to generate one batch alone, measured on a copy of the stream.

    The copy has its own seed, so training's random state is untouched.
    """
    copy = SyntheticStream(stream.samplers, stream.batch_size, seed=12345, batches_per_draw=stream.batches_per_draw)
    draw = tf.function(copy.draw)
    draw()
    start = time.perf_counter()
    for _ in range(repeats):
        draw()
    copy.images.numpy()
    return (time.perf_counter() - start) / (repeats * stream.batches_per_draw)


@dataclasses.dataclass
class ClassifierResult:
    data_source: str
    record: dict
    folder: str


def real_batches(mnist, batch_size, seed, start_step):
    """`next` on shuffled (images, labels) batches of the real training split, from batch `start_step` on.

    The batches depend only on the seed and the step (data.batches), so a
    resumed run draws what a straight one would without checkpointing them.
    Each call gives float32 (batch_size, 28, 28, 1) in [0, 1] and int32 (batch_size,).
    """
    images_, labels = mnist.split("train")
    iterator = iter(data.batches(images_, labels, batch_size, seed=seed, start=start_step))
    return lambda: next(iterator)


class ClassifierTraining:
    """Training one classifier in one folder: run.json, metrics.csv, checkpoints/, logs/ and resume.

    The classifier runs and the evaluator (evaluation.py) both train through it.

    Args:
      cfg: a `ClassifierConfig`.
      seed: seeds the weights, dropout and the batches.
      data_source: one of config.DATA_SOURCES, as the record notes it.
      folder: where it writes.
      label: how progress lines name it.
      remedy: what to do about a damaged file in `folder`.
      machine_precision: what a precision of "auto" stands for here (Config.machine_precision; "": decided when needed).
    """

    def __init__(self, cfg, seed, data_source, folder, label, remedy, machine_precision=""):
        self.cfg, self.seed, self.data_source = cfg, seed, data_source
        self.folder, self.label, self.remedy = folder, label, remedy
        self.machine_precision = machine_precision
        self.paths = outputs.training_files(folder)
        self.run_json, self.checkpoint_dir = self.paths.record, self.paths.checkpoints
        self.csv = outputs.MetricsCsv(self.paths.metrics, CSV_FIELDS, f"delete it (its rows are lost) or {remedy}")

    def read_back(self, run_ids):
        """Reads back run.json, the latest checkpoint and (unless finished) metrics.csv.

        Args:
          run_ids: the generators' run ids the run must have been trained on (None: real data).

        Returns:
          (record, checkpoint): the run.json to resume from and the latest
          checkpoint's prefix, each None for a fresh run.

        Raises:
          UserError: naming a damaged file and what to do, or a change of
            settings or generators since the run began.
        """
        keys = [k for k in RESUME_KEYS if self.data_source == "real+synthetic" or k not in MIXED_ONLY_KEYS]
        record = outputs.read_resumable_record(self.run_json, self.cfg, self.seed, keys, VALUES_BEFORE_RECORDED, self.remedy)
        # A record from before runs noted their generators from the start lacks them until it finishes.
        recorded = run_ids if record is None else record.get("generator_run_ids", run_ids)
        if recorded != run_ids:
            raise UserError(
                f"the generators changed since {self.folder} was trained ({_changed_runs(recorded or {}, run_ids or {})}); "
                "add --restart to start over"
            )
        checkpoint = outputs.latest_checkpoint(self.checkpoint_dir, self.remedy)
        if outputs.checkpoint_step(checkpoint) < self.cfg.steps:
            self.csv.rows()
        return record, checkpoint

    @staticmethod
    def new_record(run_ids):
        return {"run_id": uuid.uuid4().hex[:12], "wall_time_s": 0.0, "generator_run_ids": run_ids}

    def write_record(self, record, **fields):
        harness.write_record(
            self.run_json, record, data_source=self.data_source, seed=self.seed, config=dataclasses.asdict(self.cfg), **fields
        )

    def fit(self, mnist, record, checkpoint, batch_source):
        """Trains (or resumes from `checkpoint`) to `cfg.steps`; returns the `ClassifierTrainer`.

        Args:
          mnist: a `data.Mnist`; its validation images are checked at each "eval".
          record: the run.json to update.
          batch_source: the start step -> the batches: a `SyntheticStream` (or
            `MixedStream`), or a function returning (images, labels) as `real_batches` makes it.
        """
        os.makedirs(self.folder, exist_ok=True)
        start = outputs.checkpoint_step(checkpoint)
        # The precision it trains in, which run.json records: a resumed run keeps its own under "auto".
        policy, note = precision.run_policy(self.cfg.precision, record.get("config") if checkpoint else None, self.machine_precision)
        self.cfg = dataclasses.replace(self.cfg, precision=policy)
        if note:
            logging.info("%s: %s", self.label, note)
        next_batch = batch_source(start)
        stream = next_batch if isinstance(next_batch, SyntheticStream) else None
        trainer = ClassifierTrainer(self.cfg, next_batch, seed=self.seed)
        loop = harness.Harness(trainer.checkpoint, self.checkpoint_dir, self.remedy)
        if checkpoint:
            loop.restore(checkpoint)
            logging.info("%s: resuming from step %d", self.label, start)
        if start < self.cfg.steps:
            self._train(loop, trainer, mnist, stream, record, start)
        return trainer

    def _train(self, loop, trainer, mnist, stream, record, start):
        cfg = self.cfg
        self.csv.trim(start)
        writer = tf.summary.create_file_writer(self.paths.logs)
        progress = Progress(self.label, start, cfg.steps)
        task = ClassifierTask(self, trainer, mnist, record, progress, writer)
        schedule = harness.Schedule(cfg.steps, {"eval": cfg.eval_every, "checkpoint": cfg.checkpoint_every})
        try:
            step = loop.train(task, schedule, start, progress, writer)
        except harness.NonFiniteLoss as e:
            raise UserError(
                f"{self.label}: loss became NaN/inf near step {e.last}; the last checkpoint in "
                f"{self.checkpoint_dir} is kept. Try a lower learning rate or --restart"
            ) from None
        writer.close()
        steps_per_second = progress.steps_per_second(step)
        record.update(steps_per_second=round(steps_per_second, 2))
        if stream is not None:
            # Share of a training step spent generating its batch.
            record["generation_share"] = round(min(1.0, seconds_per_batch(stream) * steps_per_second), 3)


def _changed_runs(recorded, now):
    """What differs between two {"d" or "d/run-r": run id} maps, e.g. "runs added: 3/run-3; trained again: 5"."""
    parts = [
        f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
        for what, keys in (
            ("runs added", sorted(set(now) - set(recorded))),
            ("runs gone", sorted(set(recorded) - set(now))),
            ("trained again", sorted(k for k in set(now) & set(recorded) if now[k] != recorded[k])),
        )
        if keys
    ]
    return "; ".join(parts)


class ClassifierTask(harness.Task):
    """The classifier's hooks in the harness: validation accuracy at "eval", run.json at checkpoints."""

    def __init__(self, training, trainer, mnist, record, progress, writer):
        self.training, self.trainer, self.mnist, self.record = training, trainer, mnist, record
        self.progress, self.writer = progress, writer
        self.clock = harness.Clock(record["wall_time_s"])

    def train_steps(self, count):
        loss, finite = self.trainer.train_steps(count)
        return {"loss": loss}, finite

    def after_steps(self, step, losses):
        self.loss = losses["loss"]

    def on_events(self, step, due):
        self.elapsed = self.clock.elapsed()
        if "eval" in due:
            accuracy = validation_accuracy(self.trainer, self.mnist)
            self.progress.message(f"{self.training.label}: step {step}: validation accuracy {accuracy:.4f}")
            with self.writer.as_default(step=step):
                tf.summary.scalar("validation_accuracy", accuracy)
            self.training.csv.append({"step": step, "loss": self.loss, "validation_accuracy": accuracy, "elapsed_s": self.elapsed})

    def after_checkpoint(self, step):
        self.record.update(wall_time_s=round(self.elapsed, 2), steps_done=step, status="running")
        self.training.write_record(self.record)


class DataSourceClassifier:
    """The classifier of one data source, with its files and resume.

    Args:
      config: the whole `Config`.
      data_source: one of config.DATA_SOURCES.
      mnist: a `data.Mnist`; it learns only from the first `config.classifier.real_per_digit`
        training images of each digit (data.first_per_digit).
      samplers: what the generated images are drawn from, as `generators.classifier_samplers`
        gives it (config.GENERATED_SOURCES only; asked of the output folder's manifest when None).
    """

    def __init__(self, config, data_source, mnist, samplers=None):
        self.config = config
        self.cfg = config.classifier
        self.data_source = data_source
        self.mnist = data.first_per_digit(mnist, self.cfg.real_per_digit)
        self.samplers = samplers
        self.folder = outputs.classifier_dir(config.output_dir, data_source)
        self.model_path = outputs.training_files(self.folder).model
        self.training = ClassifierTraining(
            self.cfg, config.seed, data_source, self.folder, f"classifier ({data_source})",
            f"train it again: ./main.py --train-mnist --data {data_source} --restart", config.machine_precision,
        )  # fmt: skip

    def _samplers(self):
        if self.samplers is None:
            generators.check_real_per_digit(self.config.output_dir, self.cfg.real_per_digit)
            self.samplers = generators.classifier_samplers(self.config.output_dir, self.cfg)
        return self.samplers

    def check(self):
        """Reads back every file of this run that training or measuring will read, before anything is written.

        Returns:
          (record, checkpoint, run_ids): the run.json to resume from and the
          latest checkpoint's prefix (each None for a fresh run), and the run
          ids of the generators it draws from (config.GENERATED_SOURCES only).

        Raises:
          UserError: naming a damaged file and what to do, or a change of
            settings or generators since the run began.
        """
        run_ids = generators.run_ids(self._samplers()) if self.data_source in config_lib.GENERATED_SOURCES else None
        if self.config.restart:
            return None, None, run_ids  # The folder is deleted.
        record, checkpoint = self.training.read_back(run_ids)
        finished = outputs.checkpoint_step(checkpoint) >= self.cfg.steps
        if finished and record is not None and record.get("status") == "done" and os.path.exists(self.model_path):
            # Not needed to measure again, but the run's deliverable: say so if it is damaged.
            outputs.load_keras_model(self.model_path, "delete it, then run the same command again to rewrite it")
        return record, checkpoint, run_ids

    def _batch_source(self, start_step):
        cfg, seed = self.cfg, self.config.seed
        generated = cfg.generated_per_batch(self.data_source)
        if generated == cfg.batch_size:
            return SyntheticStream(self._samplers(), cfg.batch_size, seed=seed)
        real_next = real_batches(self.mnist, cfg.batch_size - generated, seed, start_step)
        return MixedStream(self._samplers(), generated, real_next, seed) if generated else real_next

    def train(self):
        """Trains (or resumes) to `config.classifier.steps`, then measures on the test split."""
        return self._report(*self.fit())

    def fit(self):
        """Trains (or resumes) to `config.classifier.steps`; returns (trainer, record, run_ids)."""
        record, checkpoint, run_ids = self.check()
        if self.config.restart and os.path.isdir(self.folder):
            shutil.rmtree(self.folder)
        record = record or self.training.new_record(run_ids)
        trainer = self.training.fit(self.mnist, record, checkpoint, self._batch_source)
        return trainer, record, run_ids

    def _report(self, trainer, record, run_ids):
        """Test-split numbers, model.keras, confusion.png, run.json and one results.jsonl line."""
        newly_trained = record.get("status") != "done"
        predictions = trainer.predict(data.to_float(self.mnist.test_images))
        report = accuracy_report(predictions, self.mnist.test_labels)
        # Decisions (presets, techniques, the evaluator's gate) are made on this number, never on the test one.
        report["validation_accuracy"] = validation_accuracy(trainer, self.mnist)
        if newly_trained or not os.path.exists(self.model_path):
            with outputs.atomic_path(self.model_path) as tmp:
                trainer.model.save(tmp)
            title = f"trained on {self.data_source} data: test accuracy {report['test_accuracy']:.2%}"
            confusion = outputs.confusion_path(self.config.output_dir, self.data_source)
            images.save_png(confusion, images.confusion_heatmap(report["confusion"], title))
        record.update(report)
        generated = self.cfg.generated_per_batch(self.data_source)
        record.update(
            status="done",
            steps_done=int(trainer.step.numpy()),
            batch_size=self.cfg.batch_size,
            # What the report's table of data sources groups by (and where the figure came from).
            real_per_digit=self.cfg.real_per_digit,
            generated_per_batch=generated,
            synthetic_share=generated / self.cfg.batch_size,
            command=self.config.command or record.get("command", ""),
            impressions=int(trainer.step.numpy()) * self.cfg.batch_size,
            generator_run_ids=run_ids,
            **({"stream": [[s.describe() for s in digit] for digit in self.samplers]} if run_ids is not None else {}),
            preset=self.config.preset,
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        self.training.write_record(record)
        with locks.waiting(self.config.output_dir, "results-jsonl"):  # Another data source's run may append too.
            if self._needs_result_line(record, newly_trained):
                outputs.append_jsonl(outputs.results_path(self.config.output_dir), record)
            else:
                logging.info("classifier on %s data: already trained; measured again, no new record", self.data_source)
        return ClassifierResult(self.data_source, record, self.folder)

    def _needs_result_line(self, record, newly_trained):
        """Whether results.jsonl still lacks this run (a kill can fall between run.json and it)."""
        if "run_id" not in record:  # Recorded before runs had ids.
            return newly_trained
        return all(r.get("run_id") != record["run_id"] for r in outputs.read_results(self.config.output_dir))


def train_and_report(config, mnist, samplers=None):
    """Trains a classifier per data source in `config.data_sources`; prints the table.

    Args:
      mnist: a `data.Mnist` with the whole training split (each classifier takes its
        first `config.classifier.real_per_digit` images of each digit).
      samplers: what the generated images are drawn from (`generators.classifier_samplers`
        of the output folder when None).

    Returns:
      The process exit status (0).
    """
    classifiers = [DataSourceClassifier(config, source, mnist, samplers) for source in config.data_sources]
    held = [locks.Lock(config.output_dir, f"classifier-{source}", f"the classifier on {source} data") for source in config.data_sources]
    with locks.holding(held):
        if set(config.data_sources) & set(config_lib.GENERATED_SOURCES):
            locks.refuse_digits_in_training(config.output_dir)
        for source_classifier in classifiers:  # Refuse a missing generator or damaged file before any training.
            source_classifier.check()
        outputs.read_results(config.output_dir)
        logging.info("training on %s", environment.training_device())
        results = [source_classifier.train() for source_classifier in classifiers]
    print_table(results)
    return 0


def print_table(results):
    print(
        f"\n{'training data':<14} | {'validation accuracy':>19} | {'test accuracy':>13} | "
        f"{'per-digit test accuracy (min digit)':>35} | {'impressions':>11} | wall time"
    )
    for result in results:
        r = result.record
        worst = f"{r['per_digit_accuracy'][r['min_digit']]:.2%} (digit {r['min_digit']})"
        print(
            f"{result.data_source:<14} | {r['validation_accuracy']:>19.2%} | {r['test_accuracy']:>13.2%} | "
            f"{worst:>35} | {r['impressions']:>11,} | {r['wall_time_s'] / 60:.1f} min"
        )
    for result in results:
        share = result.record.get("generation_share")
        if share is not None:
            print(f"\ngenerating the batches took {share:.0%} of each {result.data_source} training step")
    test_images = int(np.sum(results[0].record["confusion"]))
    scarce = results[0].record.get("real_per_digit")
    if scarce:
        print(f"\nreal training images: the first {scarce:,} of each digit (--real-per-digit)")
    print(
        f"(validation: held-out training images, on which settings are chosen; "
        f"test: {test_images:,} MNIST test images, only reported)"
    )
