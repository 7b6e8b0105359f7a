"""GAN losses, chosen by name: each maps the discriminator's logits to a scalar.

Logits are float32 (batch, 1); > 0 means "real". Each entry of `LOSSES` is a
pair (discriminator loss of real and fake logits, generator loss of fake
logits), as TF-GAN's losses module pairs them. The regularisers below it
(R1, mode seeking) are added to those losses by the training step.
"""

import tensorflow as tf


def _bce(labels_value, logits):
    labels = tf.fill(tf.shape(logits), labels_value)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def non_saturating_discriminator(real_logits, fake_logits, real_label=1.0):
    """Cross-entropy of "real" (target `real_label`, below 1 with one-sided label smoothing) for real images and "fake" for generated ones."""
    return _bce(real_label, real_logits) + _bce(0.0, fake_logits)


def non_saturating_generator(fake_logits):
    """Goodfellow et al.'s non-saturating loss: maximise log D(G(z))."""
    return _bce(1.0, fake_logits)


def hinge_discriminator(real_logits, fake_logits, real_label=1.0):
    """Lim & Ye's hinge loss: only logits on the wrong side of +-`real_label` (1; smoothed: lower) are penalised."""
    return tf.reduce_mean(tf.nn.relu(real_label - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))


def hinge_generator(fake_logits):
    return -tf.reduce_mean(fake_logits)


LOSSES = {
    "non_saturating": (non_saturating_discriminator, non_saturating_generator),
    "hinge": (hinge_discriminator, hinge_generator),
}
# Each loss's term for one logit of an image D should call fake, the fake half of its D loss per image.
FAKE_TERMS = {
    "non_saturating": tf.nn.softplus,  # -log(1 - sigmoid(logit)).
    "hinge": lambda logits: tf.nn.relu(1.0 + logits),
}


def negative_discriminator(loss, negative_logits, focus=0.0):
    """D's term for negatives (Asokan & Seelamantula's Rumi-GAN): real images of other digits, judged fake.

    Args:
      loss: a name in LOSSES; the negatives take the term its D loss gives generated images.
      negative_logits: D's logits (packs, 1) for packs of negatives.
      focus: gamma of a focal loss (Lin et al. 2017): each negative's term is weighted by
        sigmoid(logit) ** gamma, D's probability that it is real, held constant in the gradient, so
        the negatives D already rejects fade and those it takes for this digit count; 0: all alike.

    Returns:
      A float32 scalar >= 0, the mean over the negatives, which the training step weighs by `negative_weight`.
    """
    logits = tf.cast(negative_logits, tf.float32)
    terms = FAKE_TERMS[loss](logits)
    if focus > 0:
        terms *= tf.stop_gradient(tf.sigmoid(logits) ** focus)
    return tf.reduce_mean(terms)


def r1_penalty(real_gradients):
    """Mescheder et al.'s R1 penalty from D's gradient at the real images it judged.

    Args:
      real_gradients: d(sum of real logits) / d(real images), (batch, 28, 28, 1).

    Returns:
      The mean squared gradient norm, a float32 scalar >= 0; the caller weighs it by gamma / 2.
    """
    gradients = tf.cast(real_gradients, tf.float32)
    return tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))


def mode_seeking_penalty(images, noise):
    """Mao et al.'s (2019) mode-seeking term: small when different noise gives different images.

    The batch is split into two halves whose images are paired up; the term is the
    inverse of how far apart the paired images lie per unit of distance
    between their noise vectors, 1 / (mean |x_a - x_b| / mean |z_a - z_b| + 1e-5).
    A generator that maps distinct noise to one image (mode collapse) makes it large.

    Args:
      images: the generator's images of `noise`, (batch, 28, 28, 1) in [0, 1]; batch >= 2.
      noise: its input, (batch, latent_dim).

    Returns:
      A float32 scalar > 0 for the generator to minimise, weighted by `mode_seeking_weight`.
    """
    images, noise = tf.cast(images, tf.float32), tf.cast(noise, tf.float32)
    half = tf.shape(images)[0] // 2  # An odd batch leaves its last image unpaired.
    image_distance = tf.reduce_mean(tf.abs(images[:half] - images[half : 2 * half]))
    ratio = image_distance / tf.reduce_mean(tf.abs(noise[:half] - noise[half : 2 * half]))
    return 1.0 / (ratio + 1e-5)
