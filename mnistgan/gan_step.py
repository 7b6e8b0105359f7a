"""A digit's GAN training step, assembled from the config's loss, augmentation and network options."""

import keras
import tensorflow as tf

from mnistgan import augment, losses


class GanStep:
    """The compiled training step of a `GanState`: one D update, then one G update.

    Args:
      state: the `gan_state.GanState` it trains; its `config` chooses the loss
        (`losses.LOSSES`), the augmentation (`augment`), the R1 penalty, the
        mode-seeking term, mixed batches and the generator step's dropout.
    """

    def __init__(self, state):
        self.state = state
        self.config = state.config
        self.d_loss_fn, self.g_loss_fn = losses.LOSSES[state.config.loss]

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
        state = self.state
        index = state.rng.uniform([self.config.batch_size], 0, tf.shape(state.real)[0], dtype=tf.int32)
        real = tf.gather(state.real, index)
        d_vars = state.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_loss = self.d_loss(real, state.generator(self._noise(), training=True))
        state.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        g_vars = state.generator.trainable_variables
        z = self._noise()
        with tf.GradientTape() as tape:
            fake = state.generator(z, training=True)
            _, fake_logits = self._judge_pair(real, fake, need_real=False, dropout=self.config.generator_step_dropout)
            g_loss = self.g_loss_fn(fake_logits)
            if self.config.mode_seeking_weight > 0:
                g_loss += self.config.mode_seeking_weight * losses.mode_seeking_penalty(fake, z)
        state.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        state.step.assign_add(1)
        return d_loss, g_loss

    def _noise(self):
        return self.state.rng.normal([self.config.batch_size, self.config.latent_dim])

    def d_loss(self, real, fake):
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
        return augment.diff_augment(images, self.config.augment, self.state.rng)

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
        discriminator = self.state.discriminator
        if self.config.mixed_batches:
            logits = discriminate(discriminator, tf.concat([real, fake], axis=0), dropout)
            return logits[: tf.shape(real)[0]], logits[tf.shape(real)[0] :]
        real_logits = discriminate(discriminator, real, dropout) if need_real else None
        return real_logits, discriminate(discriminator, fake, dropout)


def discriminate(discriminator, images, dropout=True):
    """D's logits with batch statistics, and with dropout unless `dropout` is False."""
    if dropout:
        return discriminator(images, training=True)
    x = images
    for layer in discriminator.layers[1:]:  # A chain of layers after the input.
        x = layer(x, training=not isinstance(layer, keras.layers.Dropout))
    return x
