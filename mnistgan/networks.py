"""Pure builders of the three networks (uncompiled Keras models), and model helpers.

Images are float32 (batch, 28, 28, 1) in [0, 1], ink = 1, as `data.to_float`
makes them.
"""

import contextlib

import keras
import tensorflow as tf
from keras import layers

from mnistgan import precision

IMAGE_SHAPE = (28, 28, 1)
CLASSES = 10
# Length of the learned label vector a conditional DCGAN generator gets beside its noise.
LABEL_EMBEDDING = 10


@contextlib.contextmanager
def dtype_policy(name):
    """Builds the models inside under Keras dtype policy `name` ("float32", "mixed_bfloat16"; "auto": this machine's, precision.py)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision.resolve(name).policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def seed_states(model):
    """The tf.Variables holding the state of each Keras SeedGenerator (dropout) in `model`.

    tf.train.Checkpoint does not follow them by itself; checkpoints must list
    them for a resumed run to match a straight one.
    """
    return [v.value for v in model.non_trainable_variables if "seed_generator_state" in v.path]


def widened(units, width):
    """`units` hidden units or channels scaled by the width multiplier `width` (at least 1)."""
    return max(1, round(units * width))


def build_generator(latent_dim=32, leaky_slope=0.01, name="generator", batch_norm_momentum=0.99, width=1.0):
    """The original mnist-gan generator.

    Args:
      latent_dim: length of the noise vector z ~ N(0, 1).
      leaky_slope: negative slope of every leaky ReLU.
      batch_norm_momentum: momentum of the batch-norm moving statistics,
        which inference mode uses; training uses batch statistics.
      width: multiplier of every hidden width (1: the original's 1024, 7 x 7 x 64, 32;
        4 gives TensorFlow's DCGAN tutorial's 7 x 7 x 256 and 128 channels).

    Returns:
      A model mapping float32 (batch, latent_dim) to (batch, 28, 28, 1) in [0, 1].
    """
    z = keras.Input((latent_dim,), name="z")
    return keras.Model(z, _dcgan_generator_body(z, leaky_slope, batch_norm_momentum, width), name=name)


def _dcgan_generator_body(x, leaky_slope, batch_norm_momentum, width):
    """build_generator's layers from its input vector to the images."""
    dense, channels = widened(1024, width), (widened(64, width), widened(32, width))
    x = layers.Dense(dense, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Dense(7 * 7 * channels[0], use_bias=False)(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Reshape((7, 7, channels[0]))(x)  # state size: 7 x 7 x 64 width
    x = layers.Conv2DTranspose(channels[1], 5, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)  # state size: 14 x 14 x 32 width
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Conv2DTranspose(1, 5, strides=2, padding="same")(x)  # state size: 28 x 28 x 1
    # float32 so the pixels stay exact when the rest runs in bfloat16.
    return layers.Activation("sigmoid", dtype="float32", name="images")(x)


def _label_input():
    """The class a conditional network is given: int32 (batch,), 0-9."""
    return keras.Input((), dtype="int32", name="label")


def build_conditional_generator(latent_dim=32, leaky_slope=0.01, name="generator", batch_norm_momentum=0.99, width=1.0):
    """The DCGAN generator of `build_generator`, told which digit to draw: an embedding of the label
    (LABEL_EMBEDDING values) is concatenated with the noise.

    Returns:
      A model mapping [float32 (batch, latent_dim), int32 (batch,) labels 0-9] to (batch, 28, 28, 1) in [0, 1].
    """
    z, label = keras.Input((latent_dim,), name="z"), _label_input()
    x = layers.Concatenate()([z, layers.Embedding(CLASSES, LABEL_EMBEDDING)(label)])
    return keras.Model([z, label], _dcgan_generator_body(x, leaky_slope, batch_norm_momentum, width), name=name)


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization whose training pass is TensorFlow's fused kernel.

    Keras 3 normalises with separate moment, cast and arithmetic operations;
    in the discriminator at batch 64 that was 10 of its 28 ms forward and
    backward pass on this CPU. `tf.compat.v1.nn.fused_batch_norm` (Keras 2's
    `fused=True`) does it in one kernel each way: 21 ms. Same parameters,
    same epsilon and momentum; inference mode is Keras' own. Used only where
    no saved model must load without this project (the discriminator).
    """

    def call(self, inputs, training=None, mask=None):
        if not training or self.axis not in (-1, len(inputs.shape) - 1):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, channels])  # The kernel wants 4-D.
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels]),
            tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels]),
            epsilon=self.epsilon,
            is_training=True,
        )
        # The kernel returns the unbiased variance; Keras keeps the batch's own.
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * (count - 1) / count
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + tf.cast(batch, moving.dtype) * (1 - self.momentum))
        return y if len(inputs.shape) == 4 else tf.reshape(y, tf.shape(inputs))


class MinibatchStdDev(layers.Layer):
    """ProGAN's minibatch standard deviation: one extra channel showing D a batch's variety.

    Consecutive groups of `group_size` images (the last group may be smaller)
    each get the mean over features of their per-feature standard deviation,
    broadcast as a constant feature map. Groups are consecutive so that, when
    real and generated images arrive concatenated, no group mixes the two.

    Input (batch, height, width, channels); output (batch, height, width, channels + 1).
    """

    def __init__(self, group_size=4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, x):
        batch = tf.shape(x)[0]
        groups = tf.range(batch) // self.group_size
        count = (batch + self.group_size - 1) // self.group_size
        values = tf.cast(x, tf.float32)  # E[x^2] - E[x]^2 loses everything in bfloat16.
        mean = tf.math.unsorted_segment_mean(values, groups, count)
        variance = tf.math.unsorted_segment_mean(tf.square(values), groups, count) - tf.square(mean)
        spread = tf.reduce_mean(tf.sqrt(tf.maximum(variance, 0.0) + 1e-8), axis=[1, 2, 3])  # (count,)
        feature = tf.gather(spread, groups)[:, tf.newaxis, tf.newaxis, tf.newaxis]
        feature = tf.cast(tf.broadcast_to(feature, tf.concat([tf.shape(x)[:3], [1]], 0)), x.dtype)
        return tf.concat([x, feature], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


def build_discriminator(
    leaky_slope=0.01,
    name="discriminator",
    minibatch_std_group=0,
    batch_norm=FusedBatchNormalization,
    spectral_norm=False,
    width=1.0,
    packing=1,
):
    """The original mnist-gan discriminator.

    Args:
      leaky_slope: negative slope of every leaky ReLU.
      minibatch_std_group: when > 0, a `MinibatchStdDev` of this group size
        before the dense layers (not in the original).
      batch_norm: the batch-normalisation layer class (Keras' own computes the
        same, more slowly).
      spectral_norm: wrap every convolution and dense layer in Keras'
        `SpectralNormalization` and drop the batch norm, as Miyato et al.'s
        (2018) discriminator has none (not in the original).
      width: multiplier of every hidden width (1: the original's 32, 64, 1024).
      packing: images judged together, stacked as channels (PacGAN; 1: one
        image, as in the original); `pack` makes such input.

    Returns:
      A model mapping float32 (packs, 28, 28, packing) in [0, 1] to (packs, 1)
      float32 logits: > 0 means "real".
    """
    images = keras.Input((*IMAGE_SHAPE[:2], packing), name="images")
    features = _dcgan_discriminator_features(images, leaky_slope, minibatch_std_group, batch_norm, spectral_norm, width)
    logits = _weighted(layers.Dense(1, dtype="float32", name="logit"), spectral_norm)(features)
    return keras.Model(images, logits, name=name)


def _weighted(layer, spectral_norm):
    """The layer, wrapped in a spectral norm (in its dtype policy) when `spectral_norm`."""
    return layers.SpectralNormalization(layer, dtype=layer.dtype_policy) if spectral_norm else layer


def _dcgan_discriminator_features(images, leaky_slope, minibatch_std_group, batch_norm, spectral_norm, width):
    """build_discriminator's layers from its input to the 1024 (times width) features its logit reads."""

    def weighted(layer):
        return _weighted(layer, spectral_norm)

    def normalised(x):
        return x if spectral_norm else batch_norm()(x)

    x = weighted(layers.Conv2D(widened(32, width), 5, padding="same", use_bias=spectral_norm))(images)
    x = layers.LeakyReLU(leaky_slope)(normalised(x))
    x = layers.MaxPooling2D(2)(x)  # state size: 14 x 14 x 32 width
    x = weighted(layers.Conv2D(widened(64, width), 5, padding="same", use_bias=spectral_norm))(x)
    x = layers.LeakyReLU(leaky_slope)(normalised(x))
    x = layers.MaxPooling2D(2)(x)  # state size: 7 x 7 x 64 width
    if minibatch_std_group:
        x = MinibatchStdDev(minibatch_std_group)(x)  # state size: 7 x 7 x (64 width + 1)
    x = layers.Flatten()(x)
    x = weighted(layers.Dense(widened(1024, width), use_bias=spectral_norm))(x)
    x = layers.LeakyReLU(leaky_slope)(normalised(x))
    return layers.Dropout(0.5)(x)


def build_projection_discriminator(leaky_slope=0.01, name="discriminator", minibatch_std_group=0, batch_norm=FusedBatchNormalization, width=1.0):
    """The DCGAN discriminator of `build_discriminator` told the label, as Miyato & Koyama's (2018) projection
    discriminator: logit = w . phi(x) + b + embed(y) . phi(x), phi the 1024 (times width) features.

    Returns:
      A model mapping [float32 (batch, 28, 28, 1) in [0, 1], int32 (batch,) labels 0-9] to (batch, 1) float32 logits.
    """
    images, label = keras.Input(IMAGE_SHAPE, name="images"), _label_input()
    features = _dcgan_discriminator_features(images, leaky_slope, minibatch_std_group, batch_norm, False, width)
    unconditional = layers.Dense(1, dtype="float32", name="logit")(features)
    embedded = layers.Embedding(CLASSES, features.shape[-1], dtype="float32")(label)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, layers.Activation("linear", dtype="float32")(features)])
    return keras.Model([images, label], layers.Add(dtype="float32", name="projected_logit")([unconditional, projection]), name=name)


def pack(images, packing):
    """PacGAN's packs: each `packing` consecutive images stacked as the channels of one.

    Args:
      images: (n, 28, 28, 1), n a multiple of `packing`.

    Returns:
      (n / packing, 28, 28, packing): pack i holds images i * packing ... (i + 1) * packing - 1,
      so a batch of real images followed by one of generated images never mixes the two.
    """
    if packing == 1:
        return images
    height, width = IMAGE_SHAPE[:2]
    stacked = tf.reshape(images, [-1, packing, height, width])
    return tf.transpose(stacked, [0, 2, 3, 1])


def build_mlp_generator(latent_dim=100, hidden=128, leaky_slope=0.01, name="generator"):
    """The fully connected generator of the GAN notebooks (Udacity's gan_mnist, its Keras port).

    Dense latent_dim -> hidden (leaky ReLU) -> 784 (tanh), the tanh's [-1, 1] rescaled to [0, 1]
    by a plain Rescaling layer, so the saved model loads anywhere.

    Returns:
      A model mapping float32 (batch, latent_dim) to (batch, 28, 28, 1) in [0, 1].
    """
    z = keras.Input((latent_dim,), name="z")
    x = layers.LeakyReLU(leaky_slope)(layers.Dense(hidden)(z))
    x = layers.Dense(28 * 28, activation="tanh", dtype="float32")(x)
    x = layers.Rescaling(0.5, offset=0.5, dtype="float32")(x)
    images = layers.Reshape(IMAGE_SHAPE, dtype="float32", name="images")(x)
    return keras.Model(z, images, name=name)


def build_mlp_discriminator(hidden=128, leaky_slope=0.01, name="discriminator"):
    """The fully connected discriminator of the GAN notebooks: 784 -> hidden (leaky ReLU) -> 1.

    Its input is rescaled from [0, 1] to the notebooks' [-1, 1].

    Returns:
      A model mapping float32 (batch, 28, 28, 1) in [0, 1] to (batch, 1) float32 logits.
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = layers.Flatten()(layers.Rescaling(2.0, offset=-1.0)(images))
    x = layers.LeakyReLU(leaky_slope)(layers.Dense(hidden)(x))
    logits = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(images, logits, name=name)


def build_cgan_generator(latent_dim=100, name="generator"):
    """cGAN_mnist's generator (its cgan_mnist.py): the noise times a learned embedding of the label, then
    fully connected 256 -> 512 -> 1024 (each leaky ReLU 0.2, then batch norm with momentum 0.8) -> 784 (tanh,
    rescaled to [0, 1] by a plain Rescaling layer).

    Returns:
      A model mapping [float32 (batch, latent_dim), int32 (batch,) labels 0-9] to (batch, 28, 28, 1) in [0, 1].
    """
    z, label = keras.Input((latent_dim,), name="z"), _label_input()
    x = layers.Multiply()([z, layers.Embedding(CLASSES, latent_dim)(label)])
    for units in (256, 512, 1024):
        x = layers.BatchNormalization(momentum=0.8)(layers.LeakyReLU(0.2)(layers.Dense(units)(x)))
    x = layers.Dense(28 * 28, activation="tanh", dtype="float32")(x)
    images = layers.Reshape(IMAGE_SHAPE, dtype="float32", name="images")(layers.Rescaling(0.5, offset=0.5, dtype="float32")(x))
    return keras.Model([z, label], images, name=name)


def build_cgan_discriminator(name="discriminator"):
    """cGAN_mnist's discriminator: the flattened image (rescaled to its [-1, 1]) times a learned embedding of
    the label, then fully connected 512 -> 512 -> 512 (leaky ReLU 0.2; dropout 0.4 after the second and third) -> 1.

    Returns:
      A model mapping [float32 (batch, 28, 28, 1) in [0, 1], int32 (batch,) labels 0-9] to (batch, 1) float32 logits.
    """
    images, label = keras.Input(IMAGE_SHAPE, name="images"), _label_input()
    flat = layers.Flatten()(layers.Rescaling(2.0, offset=-1.0)(images))
    x = layers.Multiply()([flat, layers.Embedding(CLASSES, 28 * 28)(label)])
    x = layers.LeakyReLU(0.2)(layers.Dense(512)(x))
    for _ in range(2):
        x = layers.Dropout(0.4)(layers.LeakyReLU(0.2)(layers.Dense(512)(x)))
    logits = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model([images, label], logits, name=name)


def build_classifier(name="classifier", feature_size=1024):
    """TensorFlow's "Deep MNIST for experts" CNN.

    Args:
      feature_size: width of the penultimate (feature) layer; 1024 in the
        tutorial.

    Returns:
      A model mapping float32 (batch, 28, 28, 1) in [0, 1] to (batch, 10)
      float32 logits. Its layer named "features" is the penultimate layer.
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(images)
    x = layers.MaxPooling2D(2)(x)  # state size: 14 x 14 x 32
    x = layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)  # state size: 7 x 7 x 64
    x = layers.Flatten()(x)
    x = layers.Dense(feature_size, activation="relu", name="features")(x)
    x = layers.Dropout(0.5)(x)
    logits = layers.Dense(10, dtype="float32", name="logits")(x)
    return keras.Model(images, logits, name=name)
