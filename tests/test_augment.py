import numpy as np
import pytest
import tensorflow as tf

from mnistgan import augment, config as config_lib


def dots(count):
    """float32 (count, 28, 28, 1): one lit pixel per image, at (10 + i % 5, 12)."""
    images = np.zeros((count, 28, 28, 1), np.float32)
    for i in range(count):
        images[i, 10 + i % 5, 12] = 1.0
    return tf.constant(images)


def test_translation_moves_each_image_by_at_most_the_shift_and_keeps_its_ink():
    images = dots(64)
    shifted = augment.translation(images, tf.random.Generator.from_seed(0)).numpy()
    assert shifted.shape == (64, 28, 28, 1)
    offsets = set()
    for before, after in zip(images.numpy(), shifted):
        assert after.sum() == 1.0  # Nothing near the border: the one pixel survives, moved.
        (y0, x0), (y1, x1) = np.argwhere(before[..., 0])[0], np.argwhere(after[..., 0])[0]
        assert abs(y1 - y0) <= augment.MAX_SHIFT and abs(x1 - x0) <= augment.MAX_SHIFT
        offsets.add((y1 - y0, x1 - x0))
    assert len(offsets) > 10  # Each image its own offset, not one for the batch.


def test_translation_fills_the_border_with_background():
    shifted = augment.translation(tf.ones((32, 28, 28, 1)), tf.random.Generator.from_seed(1), max_shift=2).numpy()
    assert shifted.min() == 0.0 and shifted.max() == 1.0
    assert np.all(shifted.sum(axis=(1, 2, 3)) >= 26 * 26)  # At most 2 rows and 2 columns emptied.


def test_cutout_zeroes_one_square_per_image():
    cut = augment.cutout(tf.ones((32, 28, 28, 1)), tf.random.Generator.from_seed(0)).numpy()
    for image in cut[..., 0]:
        rows, columns = np.nonzero(image == 0)
        assert 0 < len(rows) <= augment.CUTOUT_SIZE**2
        assert rows.max() - rows.min() < augment.CUTOUT_SIZE and columns.max() - columns.min() < augment.CUTOUT_SIZE
        assert np.all(image[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1] == 0)  # A solid block.


def test_augmentation_is_differentiable_and_empty_policy_is_identity():
    images = tf.Variable(tf.random.uniform((8, 28, 28, 1), seed=0))
    rng = tf.random.Generator.from_seed(0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment.diff_augment(images, "translation,cutout", rng))
    gradient = tape.gradient(loss, images).numpy()
    assert 0 < gradient.sum() < images.numpy().size  # Flows to the kept pixels only.
    assert set(np.unique(gradient)) <= {0.0, 1.0}
    assert augment.diff_augment(images, "", rng) is images


def test_the_flag_knows_the_same_transforms_as_the_module():
    assert set(config_lib.AUGMENTATIONS) == set(augment.POLICIES)
    assert config_lib.parse_augment(" translation , cutout") == "translation,cutout"
    with pytest.raises(Exception, match="unknown augmentation 'rotate'; known: translation, cutout"):
        config_lib.parse_augment("translation,rotate")
