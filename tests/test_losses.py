import numpy as np
import pytest
import tensorflow as tf

from mnistgan import losses


def logits(*values):
    return tf.constant(np.array(values, np.float32)[:, np.newaxis])


def test_non_saturating_losses_are_cross_entropies():
    d_loss, g_loss = losses.LOSSES["non_saturating"]
    assert float(d_loss(logits(0.0), logits(0.0))) == pytest.approx(2 * np.log(2))
    assert float(g_loss(logits(0.0, 0.0))) == pytest.approx(np.log(2))
    assert float(d_loss(logits(10.0), logits(-10.0))) < 1e-3  # A sure, right D.


def test_hinge_penalises_only_logits_inside_the_margin():
    d_loss, g_loss = losses.LOSSES["hinge"]
    assert float(d_loss(logits(1.5, 3.0), logits(-1.0, -2.0))) == 0.0
    assert float(d_loss(logits(0.5), logits(0.0))) == pytest.approx(0.5 + 1.0)
    assert float(g_loss(logits(2.0, -1.0))) == pytest.approx(-0.5)


def test_r1_penalty_is_the_mean_squared_gradient_norm():
    real = tf.Variable(np.ones((4, 28, 28, 1), np.float32))
    weights = tf.constant(np.full((1, 28, 28, 1), 0.5, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(real * weights)  # A linear D: each image's gradient is `weights`.
    penalty = losses.r1_penalty(tape.gradient(total, real))
    assert float(penalty) == pytest.approx(28 * 28 * 0.25)


def test_mode_seeking_penalty_is_the_inverse_image_distance_per_noise_distance():
    noise = tf.constant([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # Pairs (0, 2) and (1, 3): |dz| = 2.
    images = tf.reshape(tf.constant([0.0, 0.0, 0.5, 1.0]), (4, 1, 1, 1)) * tf.ones((4, 28, 28, 1))  # |dx| = 0.5, 1.
    assert float(losses.mode_seeking_penalty(images, noise)) == pytest.approx(1 / (0.75 / 2 + 1e-5), rel=1e-5)
    collapsed = tf.zeros((4, 28, 28, 1))  # One image for every noise vector.
    assert float(losses.mode_seeking_penalty(collapsed, noise)) == pytest.approx(1e5)
    odd = tf.concat([images, tf.ones((1, 28, 28, 1))], 0)  # The fifth image has no partner and is left out.
    assert float(losses.mode_seeking_penalty(odd, tf.concat([noise, [[9.0, 9.0]]], 0))) == pytest.approx(
        float(losses.mode_seeking_penalty(images, noise))
    )


def test_negatives_take_the_fake_half_of_the_loss_and_focus_fades_the_rejected_ones():
    assert float(losses.negative_discriminator("non_saturating", logits(0.0))) == pytest.approx(np.log(2))
    assert float(losses.negative_discriminator("hinge", logits(-2.0, 1.0))) == pytest.approx((0.0 + 2.0) / 2)
    # Focus 2 at logit 0: weight sigmoid(0) ** 2 = 0.25, and held constant, so the gradient is 0.25 * sigmoid(0).
    x = tf.Variable(logits(0.0))
    with tf.GradientTape() as tape:
        term = losses.negative_discriminator("non_saturating", x, focus=2.0)
    assert float(term) == pytest.approx(0.25 * np.log(2))
    assert float(tape.gradient(term, x)[0, 0]) == pytest.approx(0.25 * 0.5)
    # A negative D rejects counts for next to nothing; one it takes for real counts almost fully.
    rejected, accepted = (float(losses.negative_discriminator("non_saturating", logits(v), focus=2.0)) for v in (-6.0, 6.0))
    assert rejected < 1e-5 and accepted == pytest.approx(6.0, rel=0.01)
