"""Watching a digit's GAN train: the calibrated generator, the held-out check and the selection of the best generator."""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from mnistgan import gan_step, generators

# What the noise of a step's samples is for: each purpose draws its own (see noise_seed).
NOISE_PURPOSES = ("calibration", "heldout", "quality", "coverage")


def noise_seed(run_seed, step, purpose):
    """The seed of the noise drawn at `step` for `purpose` (one of NOISE_PURPOSES).

    Each purpose gets its own stream, so the samples a quality or held-out
    check scores are independent of those that calibrated batch norm.
    """
    return [run_seed, step, NOISE_PURPOSES.index(purpose)]


def fixed_noise(config, seed, digit, count):
    """The same noise vectors at every sample point of one digit's run, across resumes."""
    return np.random.default_rng([seed, digit, 7]).standard_normal((count, config.latent_dim)).astype(np.float32)


def calibrated_generator(state, seed, samples=1024):
    """The generator of a `GanState` to sample and save now, in inference mode, ready to use.

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
    if state.average_generator is None:
        if not state.config.recalibrate_batch_norm:
            return state.generator
        model = state.generator
    else:
        model = state.average_generator
        state.g_optimizer.finalize_variable_values(model.trainable_variables)
    layers = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    if not layers:  # A family without batch norm (mlp).
        return model
    probe = keras.Model(model.input, [layer.input for layer in layers])
    z = np.random.default_rng(seed).standard_normal((samples, state.config.latent_dim)).astype(np.float32)
    for layer, x in zip(layers, probe(generator_input(state, z), training=True)):
        x = tf.cast(x, tf.float32)
        axes = list(range(len(x.shape) - 1))
        layer.moving_mean.assign(tf.reduce_mean(x, axes))
        layer.moving_variance.assign(tf.math.reduce_variance(x, axes))
    return model


def trained_labels(state):
    """The digits a conditional family's state trains on, sorted (empty for a per-digit family)."""
    return np.unique(state.labels.numpy())


def cycled_labels(state, count):
    """int32 (count,): the trained digits in turn, for a conditional generator's fixed draws."""
    digits = trained_labels(state)
    return digits[np.arange(count) % len(digits)].astype(np.int32)


def generator_input(state, noise):
    """What the state's generator takes for `noise`: the noise, with the trained digits in turn for a conditional one."""
    return [noise, cycled_labels(state, len(noise))] if len(state.labels.numpy()) else noise


@contextlib.contextmanager
def dropout_off(model):
    """Eager calls of `model` inside skip its dropout (each Dropout layer's rate is 0 meanwhile)."""
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    for layer in dropouts:
        layer.rate = 0.0
    try:
        yield
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate


def heldout_accuracy(state, generator, real_images, count, seed, real_labels=None):
    """Discriminator accuracy on held-out real images vs fresh generated ones.

    D judges as while training (batch statistics, no dropout): with separate
    real and fake batches, its batch-norm moving averages (a mix of both) fit
    neither, so inference mode would misjudge.

    Args:
      state: the `GanState` whose discriminator judges.
      generator: draws the fakes, from `calibrated_generator()`.
      real_images: float32 (n, 28, 28, 1) validation images of the digit.
      count: how many generated images to judge.
      real_labels: int32 (n,) their digits, for a conditional family (the generated ones cycle through the digits).

    Returns:
      The share judged correctly (of packs, with `packing` > 1), in [0, 1]; 0.5 means D cannot tell them apart.
    """
    packing = state.config.packing
    real_images = real_images[: len(real_images) // packing * packing]  # Whole packs only.
    count = count // packing * packing
    z = np.random.default_rng(seed).standard_normal((count, state.config.latent_dim)).astype(np.float32)
    fake_input = generator_input(state, z)
    fake_images = generator(fake_input, training=False)
    fake_labels = fake_input[1] if isinstance(fake_input, list) else None

    def judge(images, labels):
        with dropout_off(state.discriminator):  # A conditional D's two inputs leave discriminate() no other way.
            return gan_step.discriminate(state.discriminator, images, dropout=False, packing=packing, labels=labels).numpy()

    if state.config.mixed_batches:
        labels = None if real_labels is None else np.concatenate([real_labels, fake_labels])
        logits = judge(tf.concat([real_images, fake_images], axis=0), labels)
        real_logits, fake_logits = logits[: len(real_images) // packing], logits[len(real_images) // packing :]
    else:
        real_logits, fake_logits = judge(real_images, real_labels), judge(fake_images, fake_labels)
    correct = np.sum(real_logits > 0) + np.sum(fake_logits <= 0)
    return float(correct) / (len(real_logits) + len(fake_logits))


class Selection:
    """Measures a run's generator with the evaluator; keeps the best; flags a decline.

    Args:
      config: the `GanConfig` (eval_samples, decline_patience).
      evaluator: an `evaluation.Evaluator`.
      validation: {digit: float32 (n, 28, 28, 1) in [0, 1]} validation images of the digit a per-digit
        generator draws, or of each digit a conditional one draws (each measured, the means decide).
      run_seed: the run's seed, for the noise of each measurement.
      conditional: whether the generator takes the label.
    """

    def __init__(self, config, evaluator, validation, run_seed, conditional=False):
        self.config, self.evaluator, self.validation = config, evaluator, validation
        self.run_seed, self.conditional = run_seed, conditional

    def measure(self, generator, step, record, writer):
        """Measures `generator`; updates `record` (best, last, decline).

        Returns:
          (metrics, message, best): the CSV columns of the measurement, the
          line to show (after the run's label), and whether `generator` is the best so far (the caller saves it).
        """
        from mnistgan import evaluation  # Deferred: only runs that select need it.

        measured = []
        for digit, images in sorted(self.validation.items()):
            entry = generators.Entry("", label=digit) if self.conditional else None
            seed = noise_seed(self.run_seed, step, "quality") + ([digit] if self.conditional else [])
            candidates = generators.Sampler(generator, entry).draw(self.config.eval_samples, seed=seed)
            measured.append(evaluation.measure(self.evaluator, images, candidates, digit))
        quality = evaluation.Quality(**{k: float(np.mean([getattr(q, k) for q in measured])) for k in evaluation.Quality.__dataclass_fields__})
        with writer.as_default(step=step):
            for name, value in quality.as_dict().items():
                tf.summary.scalar(f"quality/{name}", value)
        distance = quality.frechet_distance
        previous_best = record.get("best_frechet_distance")
        best = previous_best is None or distance < previous_best
        if best:
            record.update(best_step=step, best_frechet_distance=round(distance, 5), best_quality=quality.as_dict())
        previous = record.get("last_frechet_distance")
        record["worse_in_a_row"] = record.get("worse_in_a_row", 0) + 1 if previous is not None and distance > previous else 0
        record["last_frechet_distance"] = round(distance, 5)
        message = (
            f"step {step}: Fréchet distance {distance:.2f} "
            f"(best {record['best_frechet_distance']:.2f} at step {record['best_step']})"
        )
        if record["worse_in_a_row"] >= self.config.decline_patience:
            record["declined"] = True
            message += f"; quality fell {record['worse_in_a_row']} measurements in a row"
        metrics = {k: getattr(quality, k) for k in ("frechet_distance", "class_precision", "precision", "recall")}
        return metrics, message, best
