"""Pure builders of the three networks (uncompiled Keras models), and model helpers.

Images are float32 (batch, 28, 28, 1) in [0, 1], ink = 1, as `data.to_float`
makes them.
"""

import contextlib

import keras
from keras import layers

IMAGE_SHAPE = (28, 28, 1)


@contextlib.contextmanager
def dtype_policy(name):
    """Builds the models inside under Keras dtype policy `name` ("float32", "mixed_bfloat16")."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
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


def build_generator(latent_dim=32, leaky_slope=0.01, name="generator", batch_norm_momentum=0.99):
    """The original mnist-gan generator.

    Args:
      latent_dim: length of the noise vector z ~ N(0, 1).
      leaky_slope: negative slope of every leaky ReLU.
      batch_norm_momentum: momentum of the batch-norm moving statistics,
        which inference mode uses; training uses batch statistics.

    Returns:
      A model mapping float32 (batch, latent_dim) to (batch, 28, 28, 1) in [0, 1].
    """
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(1024, use_bias=False)(z)
    x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Dense(7 * 7 * 64, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Reshape((7, 7, 64))(x)  # state size: 7 x 7 x 64
    x = layers.Conv2DTranspose(32, 5, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)  # state size: 14 x 14 x 32
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Conv2DTranspose(1, 5, strides=2, padding="same")(x)  # state size: 28 x 28 x 1
    # float32 so the pixels stay exact when the rest runs in bfloat16.
    images = layers.Activation("sigmoid", dtype="float32", name="images")(x)
    return keras.Model(z, images, name=name)


def build_discriminator(leaky_slope=0.01, name="discriminator"):
    """The original mnist-gan discriminator.

    Returns:
      A model mapping float32 (batch, 28, 28, 1) in [0, 1] to (batch, 1)
      float32 logits: > 0 means "real".
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = layers.Conv2D(32, 5, padding="same", use_bias=False)(images)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.MaxPooling2D(2)(x)  # state size: 14 x 14 x 32
    x = layers.Conv2D(64, 5, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.MaxPooling2D(2)(x)  # state size: 7 x 7 x 64
    x = layers.Flatten()(x)
    x = layers.Dense(1024, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(leaky_slope)(x)
    x = layers.Dropout(0.5)(x)
    logits = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(images, logits, name=name)


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
