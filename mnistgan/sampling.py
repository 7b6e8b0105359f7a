"""Drawing from the trained generators: a synthetic MNIST to take away, and latent walks.

Generators come as `generators.Sampler`s, which map float32 noise
(n, latent) ~ N(0, 1) to float32 images (n, 28, 28, 1) in [0, 1]; what leaves
this module is uint8 (n, 28, 28) in [0, 255] with ink = 255, as MNIST stores it.
"""

import gzip
import os
import time

import numpy as np
from absl import logging

from mnistgan import data, generators, images, outputs
from mnistgan.errors import UserError

WALK_ANCHORS = 5
WALK_STEPS = 8
# Images per digit drawn at once: bounds memory (10,000 images are 31 MB as float32).
IMAGES_PER_DRAW = 10_000
NPZ_NAME = "synthetic-mnist.npz"
RECORD_NAME = "synthetic-mnist.json"


# ---- latent walks ----


def slerp(a, b, t):
    """The point at `t` in [0, 1] on the great-circle arc from noise vector `a` to `b` (both (latent,)).

    Unlike the straight line, which passes through points of unusually small
    norm for a Gaussian vector, the arc keeps the norm in the range the
    generator was trained on (White 2016, "Sampling generative networks").
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cosine = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))
    if omega < 1e-6:  # (Nearly) parallel: the arc is the line.
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def walk_noise(latent_dim, seed, anchors=WALK_ANCHORS, steps=WALK_STEPS):
    """Noise along a walk through `anchors` random vectors.

    Returns:
      float32 (anchors - 1, steps, latent_dim): leg i goes from anchor i to
      anchor i + 1, both included, so each leg starts where the last one ended.
    """
    points = np.random.default_rng(seed).standard_normal((anchors, latent_dim))
    fractions = np.linspace(0.0, 1.0, steps)
    return np.array([[slerp(points[i], points[i + 1], t) for t in fractions] for i in range(anchors - 1)], np.float32)


def save_latent_walk(output_dir, digit, sampler, seed, unit=None):
    """Draws the walk of the digit's `generators.Sampler` and saves it as output/digit-N/latent-walk.png; returns the path.

    A conditional family's (`unit` its name) goes into its folder (outputs.latent_walk_path).
    """
    noise = walk_noise(sampler.latent_dim, seed=[seed, digit, 13])
    legs, steps, latent_dim = noise.shape
    frames = data.to_uint8(sampler.images_for(noise.reshape(legs * steps, latent_dim))).reshape(legs, steps, 28, 28)
    path = outputs.latent_walk_path(output_dir, digit, unit)
    images.save_png(path, images.latent_walk_strip(frames))
    return path


# ---- a synthetic MNIST ----


def draw_dataset(samplers, per_digit, seed):
    """`per_digit` fresh images of each digit, shuffled together.

    Args:
      samplers: ten lists, digit d's at index d, of `generators.Sampler`s that
        share the digit's images equally (as the classifier's stream draws them).
      per_digit: images per digit.
      seed: the same seed draws the same data set.

    Returns:
      (images uint8 (n, 28, 28) in [0, 255], labels uint8 (n,) in [0, 9]), n = len(samplers) * per_digit.
    """
    count = len(samplers) * per_digit
    order = np.random.default_rng([seed, 12]).permutation(count)
    x = np.empty((count, 28, 28), np.uint8)
    y = np.empty((count,), np.uint8)
    for digit, digit_samplers in enumerate(samplers):
        for part, start in enumerate(range(0, per_digit, IMAGES_PER_DRAW)):
            n = min(IMAGES_PER_DRAW, per_digit - start)
            places = order[digit * per_digit + start : digit * per_digit + start + n]
            x[places] = data.to_uint8(generators.draw_mixture(digit_samplers, n, seed=[seed, digit, 11, part]))
            y[places] = digit
        logging.info("digit %d: %d images drawn", digit, per_digit)
    return x, y


def write_dataset(folder, x, y, file_format):
    """Writes images `x` and labels `y` in `file_format` (config.EXPORT_FORMATS); returns the file names.

    "idx" and "idx.gz" write MNIST's train-images-idx3-ubyte and
    train-labels-idx1-ubyte (big-endian headers, uint8), "npz" one
    synthetic-mnist.npz with x_train and y_train as Keras' mnist.npz holds
    them. Each file is written under a temporary name and renamed.
    """
    if file_format == "npz":
        with outputs.atomic_path(os.path.join(folder, NPZ_NAME)) as tmp:
            np.savez_compressed(tmp, x_train=x, y_train=y)
        return [NPZ_NAME]
    names = []
    for name, array in ((data.TRAIN_IMAGES_IDX, x), (data.TRAIN_LABELS_IDX, y)):
        content = data.format_idx(array)
        if file_format == "idx.gz":
            name, content = name + ".gz", gzip.compress(content, mtime=0)  # mtime 0: same seed, same bytes.
        outputs.write_bytes(os.path.join(folder, name), content)
        names.append(name)
    return names


def export_samplers(config):
    """What `--export-mnist` draws from: the synthetic classifier's samplers, or each digit's kept generator at N(0, 1)."""
    if config.export.source == "classifier":
        return generators.classifier_samplers(config.output_dir, config.classifier)
    return [[sampler] for sampler in generators.kept_samplers(config.output_dir)]


def export_mnist(config, samplers=None):
    """`--export-mnist`: draws `config.export.per_digit` images per digit and writes them.

    Args:
      config: the whole `Config`; `export` says where, how and from what, `seed` seeds the noise.
      samplers: ten lists of `generators.Sampler`s (`export_samplers(config)` when None).

    Returns:
      The process exit status (0).

    Raises:
      UserError: a missing or unreadable generator, or a folder that cannot be written.
    """
    cfg = config.export
    samplers = samplers or export_samplers(config)
    x, y = draw_dataset(samplers, cfg.per_digit, config.seed)
    try:
        names = write_dataset(cfg.folder, x, y, cfg.file_format)
        outputs.write_json(
            os.path.join(cfg.folder, RECORD_NAME),
            {
                "files": names,
                "images": len(y),
                "per_digit": cfg.per_digit,
                "seed": config.seed,
                "source": cfg.source,
                "output_dir": os.path.abspath(config.output_dir),
                "generators": {str(digit): [s.describe() for s in digit_samplers] for digit, digit_samplers in enumerate(samplers)},
                "generator_run_ids": generators.run_ids(samplers),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    except OSError as e:
        raise UserError(f"cannot write the export into {cfg.folder!r}: {e.strerror or e}") from e
    what = "the synthetic classifier's generators" if cfg.source == "classifier" else "each digit's generator.keras"
    print(
        f"wrote {len(y):,} generated images ({cfg.per_digit:,} per digit from {what}, seed {config.seed}) "
        f"to {cfg.folder}: {', '.join(names)}"
    )
    return 0
