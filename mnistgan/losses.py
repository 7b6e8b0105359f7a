"""GAN losses, chosen by name: each maps the discriminator's logits to a scalar.

Logits are float32 (batch, 1); > 0 means "real". Each entry of `LOSSES` is a
pair (discriminator loss of real and fake logits, generator loss of fake
logits), as TF-GAN's losses module pairs them.
"""

import tensorflow as tf


def _bce(labels_value, logits):
    labels = tf.fill(tf.shape(logits), labels_value)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def non_saturating_discriminator(real_logits, fake_logits):
    """Cross-entropy of "real" for real images and "fake" for generated ones."""
    return _bce(1.0, real_logits) + _bce(0.0, fake_logits)


def non_saturating_generator(fake_logits):
    """Goodfellow et al.'s non-saturating loss: maximise log D(G(z))."""
    return _bce(1.0, fake_logits)


def hinge_discriminator(real_logits, fake_logits):
    """Lim & Ye's hinge loss: only logits on the wrong side of +-1 are penalised."""
    return tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))


def hinge_generator(fake_logits):
    return -tf.reduce_mean(fake_logits)


LOSSES = {
    "non_saturating": (non_saturating_discriminator, non_saturating_generator),
    "hinge": (hinge_discriminator, hinge_generator),
}


def r1_penalty(real_gradients):
    """Mescheder et al.'s R1 penalty from D's gradient at the real images it judged.

    Args:
      real_gradients: d(sum of real logits) / d(real images), (batch, 28, 28, 1).

    Returns:
      The mean squared gradient norm, a float32 scalar >= 0; the caller weighs it by gamma / 2.
    """
    gradients = tf.cast(real_gradients, tf.float32)
    return tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
