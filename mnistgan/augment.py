"""Differentiable augmentation (DiffAugment, Zhao et al. 2020), sized for digits.

The same kind of random transform is applied to real and generated images
just before the discriminator, in the discriminator step and the generator
step alike. Every transform is differentiable in the images, so the
generator learns through it; the discriminator never sees an unaugmented
image, which keeps it from memorising the ~5,000 training images of a digit.
Nothing else in the trainer knows which transforms run.

Images are float32 (batch, 28, 28, 1) in [0, 1] (ink = 1); transforms keep
that shape and range. Randomness comes from a `tf.random.Generator`, so a
checkpoint holds it and a resumed run draws the same transforms.
"""

import tensorflow as tf

# Up to this many pixels of shift in each direction (the reference's 1/8 of the side is 3.5 here).
MAX_SHIFT = 2
# Side of the square cut out of each image (the reference cuts half the side; a digit's
# strokes are thin, so a quarter keeps the digit readable).
CUTOUT_SIZE = 7


def translation(images, rng, max_shift=MAX_SHIFT):
    """Shifts each image by its own random whole-pixel offset in [-max_shift, max_shift]; empty borders are 0."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
    offsets = rng.uniform([batch, 2], 0, 2 * max_shift + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[tf.newaxis]  # (batch, height)
    columns = offsets[:, 1:] + tf.range(width)[tf.newaxis]  # (batch, width)
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)  # (batch, height, width + 2 * max_shift, 1)
    return tf.gather(shifted, columns, axis=2, batch_dims=1)


def cutout(images, rng, size=CUTOUT_SIZE):
    """Sets a random size x size square of each image to 0 (it may reach past the border)."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    top_left = rng.uniform([batch, 2], 0, max(height, width), dtype=tf.int32) % [height, width] - size // 2

    def outside(offset, length):  # (batch, length): True where a row / column is not cut.
        position = tf.range(length)[tf.newaxis]
        return (position < offset) | (position >= offset + size)

    keep = outside(top_left[:, :1], height)[:, :, tf.newaxis] | outside(top_left[:, 1:], width)[:, tf.newaxis, :]
    return images * tf.cast(keep, images.dtype)[..., tf.newaxis]


POLICIES = {"translation": translation, "cutout": cutout}


def diff_augment(images, policy, rng):
    """Applies each transform named in `policy` (a comma list, as `config.parse_augment` checks it) in order."""
    for name in filter(None, policy.split(",")):
        images = POLICIES[name](images, rng)
    return images
