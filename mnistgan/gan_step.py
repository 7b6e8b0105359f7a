"""A digit's GAN training step, assembled from the config's loss, augmentation and network options."""

import keras
import tensorflow as tf

from mnistgan import augment, families, losses, networks


def decay_factor(step, steps, fraction):
    """The share of the base learning rate used at `step` (0-based) of `steps`.

    1 until the last `fraction` of the steps, then falling linearly to 0 at
    `steps` (`fraction` 0: always 1). Works on Python numbers and on tensors.
    """
    if fraction <= 0:
        return 1.0
    remaining = (steps - step) / (fraction * steps)
    return tf.clip_by_value(tf.cast(remaining, tf.float32), 0.0, 1.0)


def warmup_factor(step, warmup):
    """The share of its full weight a loss term has at `step` (0-based): rising linearly from 0 at step 0
    to 1 at step `warmup` and after (`warmup` 0: always 1). Works on Python numbers and on tensors."""
    if warmup <= 0:
        return 1.0
    return tf.minimum(tf.cast(step, tf.float32) / warmup, 1.0)


class GanStep:
    """The compiled training step of a `GanState`: one D update, then one G update.

    Args:
      state: the `gan_state.GanState` it trains; its `config` chooses the loss
        (`losses.LOSSES`), the augmentation (`augment`), the R1 penalty, the
        mode-seeking term, mixed batches, the generator step's dropout, packing,
        the other digits as negatives and the learning-rate decay.
    """

    def __init__(self, state):
        self.state = state
        self.config = state.config
        self.d_loss_fn, self.g_loss_fn = losses.LOSSES[state.config.loss]
        self.conditional = families.is_conditional(state.config)

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
            d_loss, g_loss = self.train_step()
            finite = finite & tf.math.is_finite(d_loss) & tf.math.is_finite(g_loss)
        return d_loss, g_loss, finite

    def train_step(self):
        """One step (eager unless called inside `train_steps`); returns (d_loss, g_loss)."""
        state, cfg = self.state, self.config
        if cfg.lr_decay_fraction > 0:
            factor = decay_factor(tf.cast(state.step, tf.float32), cfg.steps, cfg.lr_decay_fraction)
            for optimizer, rate in zip((state.g_optimizer, state.d_optimizer), state.learning_rates()):
                optimizer.learning_rate = rate * factor
        index = self._real_indices()
        real = tf.gather(state.real, index)
        # A conditional family's D step shows it generated images of the real batch's labels (as cGAN_mnist
        # does); its G step draws labels as often as the training data holds them.
        labels = tf.gather(state.labels, index) if self.conditional else None
        negatives = self._negatives() if cfg.negative_weight > 0 else None
        d_vars = state.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            fake = state.generator(self._generator_input(self._noise(), labels), training=True)
            d_loss = self.d_loss(real, fake, labels, negatives)
        state.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        g_vars = state.generator.trainable_variables
        z = self._noise()
        fake_labels = self._drawn_labels() if self.conditional else None
        with tf.GradientTape() as tape:
            fake = state.generator(self._generator_input(z, fake_labels), training=True)
            _, fake_logits = self._judge_pair(
                real, fake, need_real=False, dropout=self.config.generator_step_dropout, labels=(labels, fake_labels)
            )
            g_loss = self.g_loss_fn(fake_logits)
            if self.config.mode_seeking_weight > 0:
                g_loss += self.config.mode_seeking_weight * losses.mode_seeking_penalty(fake, z)
        state.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        state.step.assign_add(1)
        return d_loss, g_loss

    def _real_indices(self):
        """Which real images this step shows D: uniformly drawn, or by the state's drawing weights (coverage.py)."""
        state, count = self.state, self._images_per_side()

        def uniform():
            return state.rng.uniform([count], 0, tf.shape(state.real)[0], dtype=tf.int32)

        if self.config.coverage_focus <= 0:
            return uniform()

        def weighted():
            index = tf.searchsorted(state.draw_cdf, state.rng.uniform([count]), side="right")
            return tf.minimum(index, tf.shape(state.real)[0] - 1)  # Float rounding at the top end.

        return tf.cond(state.weighted, weighted, uniform)

    def _negatives(self):
        """As many of the other digits' training images as a step's generated ones, drawn uniformly."""
        state = self.state
        index = state.rng.uniform([self._images_per_side()], 0, tf.shape(state.negatives)[0], dtype=tf.int32)
        return tf.gather(state.negatives, index)

    def _drawn_labels(self):
        """int32 (images per side,) labels for the generator step, as often as the training data holds each."""
        state = self.state
        return tf.gather(state.labels, state.rng.uniform([self._images_per_side()], 0, tf.shape(state.labels)[0], dtype=tf.int32))

    @staticmethod
    def _generator_input(noise, labels):
        return noise if labels is None else [noise, labels]

    def _images_per_side(self):
        """Real (and generated) images per step: `batch_size` packs of `packing`."""
        return self.config.batch_size * self.config.packing

    def _noise(self):
        return self.state.rng.normal([self._images_per_side(), self.config.latent_dim])

    def d_loss(self, real, fake, labels=None, negatives=None):
        """D's loss on a real and a fake batch (both of `labels`, for a conditional family), with the R1 penalty when
        `r1_gamma` > 0 and, given `negatives` (other digits' images), their term weighted by `negative_weight`
        (ramped up over the first `negative_warmup` steps)."""
        cfg = self.config
        gamma = cfg.r1_gamma
        real = self._augment(real)
        with tf.GradientTape(watch_accessed_variables=False) as input_tape:
            input_tape.watch(real)
            real_logits, fake_logits, *negative_logits = self._judge_pair(
                real, fake, augmented=True, labels=(labels, labels), negatives=negatives
            )
            real_total = tf.reduce_sum(real_logits)  # Inside the tape, so its gradient at `real` exists.
        loss = self.d_loss_fn(real_logits, fake_logits, 1.0 - cfg.label_smoothing)
        if negatives is not None:
            weight = cfg.negative_weight * warmup_factor(self.state.step, cfg.negative_warmup)
            loss += weight * losses.negative_discriminator(cfg.loss, negative_logits[0], cfg.negative_focus)
        if gamma > 0:
            loss += gamma / 2 * losses.r1_penalty(input_tape.gradient(real_total, real))
        return loss

    def _augment(self, images):
        return augment.diff_augment(images, self.config.augment, self.state.rng)

    def _judge_pair(self, real, fake, need_real=True, augmented=False, dropout=True, labels=(None, None), negatives=None):
        """D's logits (training mode) for a real and a fake batch of equal size: (real's, fake's), and
        with `negatives` (a batch of other digits' images, as many as `fake`) their logits third; apart from
        the real batch, negatives are judged in one batch with the generated images.

        With `mixed_batches`, both go through D as one batch, so D's batch norm
        keeps the difference between them (a grey fake batch stays greyer than
        the real one). Otherwise each is its own batch, as in the original, and
        the generator step shows D the fake batch alone. Both batches are
        augmented here (`augment`) unless `augmented` says `real` already is.
        `dropout` False switches D's dropout off (batch statistics stay).
        `labels` are the (real, fake) batches' labels for a conditional family's D (which takes no negatives).
        """
        fake = self._augment(fake)
        if not augmented and (need_real or self.config.mixed_batches):
            real = self._augment(real)
        batches = [real, fake] + ([] if negatives is None else [self._augment(negatives)])
        discriminator, packing = self.state.discriminator, self.config.packing
        real_labels, fake_labels = labels
        if self.config.mixed_batches:  # Every batch holds whole packs, so no pack mixes two kinds.
            both = None if real_labels is None else tf.concat([real_labels, fake_labels], axis=0)
            logits = discriminate(discriminator, tf.concat(batches, axis=0), dropout, packing, both)
            return tuple(tf.split(logits, [tf.shape(batch)[0] // packing for batch in batches]))
        real_logits = discriminate(discriminator, real, dropout, packing, real_labels) if need_real else None
        if negatives is None:
            return real_logits, discriminate(discriminator, fake, dropout, packing, fake_labels)
        # Beside the generated images, so that D's batch norm keeps what sets them apart from the real batch.
        logits = discriminate(discriminator, tf.concat(batches[1:], axis=0), dropout, packing)
        return (real_logits, *tf.split(logits, 2))


def discriminate(discriminator, images, dropout=True, packing=1, labels=None):
    """D's logits with batch statistics, and with dropout unless `dropout` is False.

    Args:
      images: (n, 28, 28, 1), n a multiple of `packing`.
      packing: images per pack (`networks.pack`); D returns one logit per pack, (n / packing, 1).
      labels: int32 (n,) for a conditional family's D (whose dropout stays on: config.check_family).
    """
    images = networks.pack(images, packing)
    if labels is not None:
        return discriminator([tf.convert_to_tensor(images), tf.convert_to_tensor(labels, tf.int32)], training=True)
    if dropout:
        return discriminator(images, training=True)
    x = images
    for layer in discriminator.layers[1:]:  # A chain of layers after the input.
        x = layer(x, training=not isinstance(layer, keras.layers.Dropout))
    return x
