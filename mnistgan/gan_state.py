"""What a digit's GAN checkpoint holds: both networks, their optimizers, the step and the random state."""

import keras
import numpy as np
import tensorflow as tf

from mnistgan import families, networks, optimizers


class GanState:
    """Both networks, their optimizers, the step and the random state of one digit.

    Everything stateful is tracked by `self.checkpoint`, so a restore puts the
    run back exactly where it was.

    Args:
      config: a `GanConfig`.
      real_images: float32 (n, 28, 28, 1) in [0, 1], the digit's training images.
      seed: seeds the weights, the noise and the batch choice.
      draw_weights: float (n,) probabilities of drawing each real image
        (coverage.py), or None to draw them uniformly.
      labels: int32 (n,) digits of the real images, for a conditional family (None: one digit's images).
      negatives: float32 (m, 28, 28, 1) in [0, 1], the other digits' training images, which D learns to
        judge as not this digit (`GanConfig.negative_weight`); None: none.
    """

    def __init__(self, config, real_images, seed, draw_weights=None, labels=None, negatives=None):
        self.config = config
        self.generator, self.discriminator = self._build_networks()
        use_ema = config.ema_momentum > 0
        self.average_generator = None  # Holds the weight averages for sampling; never trained.
        if use_ema:
            self.average_generator = families.build_generator(config, "average_generator")
        self.g_optimizer = optimizers.FusedAdam(
            config.learning_rate, beta_1=config.beta1, use_ema=use_ema, ema_momentum=config.ema_momentum or 0.99
        )
        self.d_optimizer = optimizers.FusedAdam(self._d_learning_rate(), beta_1=config.beta1)
        # Build the slots now so a restore fills them instead of deferring.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        # A variable, not a constant, so `reset` can swap in another digit.
        self.real = tf.Variable(real_images, shape=tf.TensorShape([None, *networks.IMAGE_SHAPE]), trainable=False)
        # The cumulative drawing probabilities of the real images, used while `weighted` (not checkpointed: coverage.npz holds them).
        self.draw_cdf = tf.Variable([1.0], shape=tf.TensorShape([None]), trainable=False)
        self.weighted = tf.Variable(False, trainable=False)
        self.labels = tf.Variable(tf.zeros([0], tf.int32), shape=tf.TensorShape([None]), trainable=False)
        self.negatives = tf.Variable(tf.zeros([0, *networks.IMAGE_SHAPE]), shape=tf.TensorShape([None, *networks.IMAGE_SHAPE]), trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.rng = tf.random.Generator.from_seed(seed)
        # These keyword names are the checkpoint's object names: changing one breaks every resume.
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
        self.reset(real_images, seed, draw_weights, labels, negatives)

    def reset(self, real_images, seed, draw_weights=None, labels=None, negatives=None):
        """Starts a fresh run on `real_images` (drawn by `draw_weights`; `negatives` beside them): new weights from
        `seed`, empty optimizers, step 0.

        Every trace of a Keras optimizer step stays in TensorFlow's gradient
        registry for the life of the process (about 120 MiB each here), so the
        digits of one run share one state and its compiled step (gan_step.GanStep).
        """
        keras.utils.set_random_seed(seed)
        for model, new in zip((self.generator, self.discriminator), self._build_networks()):
            for variable, value in zip(model.variables, new.variables):  # Includes the dropout seed state.
                variable.assign(value)
        for optimizer, rate in zip((self.g_optimizer, self.d_optimizer), self.learning_rates()):
            for variable in optimizer.variables:  # Step count, moments and weight averages.
                variable.assign(tf.zeros_like(variable))
            optimizer.learning_rate = rate  # The one that does not start at zero.
        self.real.assign(real_images)
        self.labels.assign(np.zeros([0], np.int32) if labels is None else np.asarray(labels, np.int32))
        self.negatives.assign(np.zeros([0, *networks.IMAGE_SHAPE], np.float32) if negatives is None else negatives)
        self.weighted.assign(False)
        if draw_weights is not None:
            self.set_draw_weights(draw_weights)
        self.step.assign(0)
        self.rng.reset_from_seed(seed)

    def set_draw_weights(self, draw_weights):
        """Draws the real images by `draw_weights` (float (n,), >= 0, not all 0) from the next step on."""
        cdf = np.cumsum(np.asarray(draw_weights, np.float64))
        self.draw_cdf.assign((cdf / cdf[-1]).astype(np.float32))
        self.weighted.assign(True)

    def _build_networks(self):
        """A new (generator, discriminator) pair of the config's family with freshly drawn weights."""
        return families.build_networks(self.config)

    def _d_learning_rate(self):
        return self.config.d_learning_rate or self.config.learning_rate

    def learning_rates(self):
        """(G's, D's) learning rate at the configured start, before any decay."""
        return self.config.learning_rate, self._d_learning_rate()
