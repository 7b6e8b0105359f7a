"""Drawing from generators: latent walks and the synthetic MNIST export, read back by plain readers."""

import gzip
import json
import os
import struct
import types

import numpy as np
import pytest
from PIL import Image

from mnistgan import config as config_lib, data, generators, networks, sampling
from mnistgan.errors import UserError
from tests.conftest import run_main
from tests.test_classifier import save_generators


class FakeGenerator:
    """Draws digit d as pixel (0, 0) = 25 * d and pixel (0, 1) from the first noise value."""

    def __init__(self, digit, latent_dim=4):
        self.digit = digit
        self.inputs = [types.SimpleNamespace(shape=(None, latent_dim))]

    def predict(self, noise, batch_size=None, verbose=0):
        images = np.zeros((len(noise), 28, 28, 1), np.float32)
        images[:, 0, 0, 0] = 25 * self.digit / 255
        images[:, 0, 1, 0] = 1 / (1 + np.exp(-noise[:, 0]))
        return images


FAKES = [[generators.Sampler(FakeGenerator(d))] for d in range(10)]


def read_idx(path):
    """An IDX file of unsigned bytes read with struct alone: the way any MNIST loader reads it."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        content = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", content[:4])
    assert zero == 0 and dtype == 0x08
    shape = struct.unpack(f">{ndim}I", content[4 : 4 + 4 * ndim])
    values = np.frombuffer(content, np.uint8, offset=4 + 4 * ndim)
    assert values.size == np.prod(shape)
    return values.reshape(shape)


# ---- latent walks ----


def test_slerp_keeps_the_norm_where_the_straight_line_loses_it():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(sampling.slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(sampling.slerp(a, b, 1.0), b, atol=1e-12)
    assert np.linalg.norm(sampling.slerp(a, b, 0.5)) == pytest.approx(1.0)  # The straight line's midpoint: 0.707.
    np.testing.assert_allclose(sampling.slerp(a, a, 0.3), a)  # Parallel vectors: no division by zero.


def test_walk_legs_join_and_move_in_small_steps():
    walk = sampling.walk_noise(32, seed=0)
    assert walk.shape == (sampling.WALK_ANCHORS - 1, sampling.WALK_STEPS, 32) and walk.dtype == np.float32
    np.testing.assert_array_equal(walk[:-1, -1], walk[1:, 0])  # Each leg starts where the last one ended.
    steps = np.linalg.norm(np.diff(walk, axis=1), axis=-1)  # (legs, steps - 1)
    legs = np.linalg.norm(walk[:, -1] - walk[:, 0], axis=-1)
    assert np.all(steps < legs[:, None] / 4)  # Small steps...
    assert np.all(steps.max(axis=1) < 1.5 * steps.min(axis=1))  # ...of even size: no jump.
    np.testing.assert_array_equal(walk, sampling.walk_noise(32, seed=0))
    assert not np.allclose(walk, sampling.walk_noise(32, seed=1))


def test_latent_walk_picture(tmp_path):
    path = sampling.save_latent_walk(str(tmp_path), 5, generators.Sampler(networks.build_generator(32)), seed=0)
    assert path.endswith(os.path.join("digit-5", "latent-walk.png"))
    picture = np.asarray(Image.open(path))
    cell = 28 + 2  # Image and padding, doubled by the scale.
    assert picture.shape == ((4 * cell + 2) * 2, (8 * cell + 2) * 2)
    assert picture.min() < 128  # Something was drawn.


# ---- the synthetic MNIST ----


def test_dataset_is_balanced_shuffled_labelled_and_seeded():
    x, y = sampling.draw_dataset(FAKES, per_digit=7, seed=0)
    assert x.shape == (70, 28, 28) and x.dtype == np.uint8 and y.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [7] * 10
    np.testing.assert_array_equal(x[:, 0, 0] // 25, y)  # Every label is the digit its generator drew.
    assert len(set(y[:10].tolist())) > 1  # Shuffled, not digit after digit.
    again, _ = sampling.draw_dataset(FAKES, per_digit=7, seed=0)
    other, _ = sampling.draw_dataset(FAKES, per_digit=7, seed=1)
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, other)


@pytest.mark.parametrize("file_format", ["idx", "idx.gz"])
def test_idx_files_read_back_by_a_plain_reader(tmp_path, file_format):
    config = config_lib.Config(
        action="export-mnist", output_dir=str(tmp_path), seed=4,
        export=config_lib.ExportConfig(folder=str(tmp_path / "export"), per_digit=6, file_format=file_format),
    )  # fmt: skip
    assert sampling.export_mnist(config, samplers=FAKES) == 0
    suffix = ".gz" if file_format == "idx.gz" else ""
    images = read_idx(str(tmp_path / "export" / f"train-images-idx3-ubyte{suffix}"))
    labels = read_idx(str(tmp_path / "export" / f"train-labels-idx1-ubyte{suffix}"))
    expected_x, expected_y = sampling.draw_dataset(FAKES, 6, seed=4)
    np.testing.assert_array_equal(images, expected_x)
    np.testing.assert_array_equal(labels, expected_y)
    with open(tmp_path / "export" / f"train-images-idx3-ubyte{suffix}", "rb") as f:
        raw = gzip.decompress(f.read()) if suffix else f.read()
    assert raw[:16] == struct.pack(">IIII", 2051, 60, 28, 28)  # MNIST's own magic number and sizes.
    np.testing.assert_array_equal(data.parse_idx(raw, "export", 3), images)  # And the project's parser agrees.
    record = json.load(open(tmp_path / "export" / sampling.RECORD_NAME))
    assert record["images"] == 60 and record["seed"] == 4
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "export" / f"train-labels-idx1-ubyte{suffix}").st_mode & 0o777 == 0o666 & ~umask


def test_npz_holds_keras_mnist_keys(tmp_path):
    config = config_lib.Config(
        action="export-mnist", output_dir=str(tmp_path),
        export=config_lib.ExportConfig(folder=str(tmp_path / "export"), per_digit=3, file_format="npz"),
    )  # fmt: skip
    sampling.export_mnist(config, samplers=FAKES)
    with np.load(tmp_path / "export" / sampling.NPZ_NAME, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_train", "y_train"]
        assert npz["x_train"].shape == (30, 28, 28) and npz["x_train"].dtype == np.uint8
        np.testing.assert_array_equal(npz["x_train"][:, 0, 0] // 25, npz["y_train"])


def test_missing_generators_are_refused(tmp_path):
    export = config_lib.ExportConfig(folder=str(tmp_path / "x"))
    config = config_lib.Config(action="export-mnist", output_dir=str(tmp_path), export=export)
    with pytest.raises(UserError, match=r"no generator for digit\(s\) 0,1,2,3,4,5,6,7,8,9"):
        sampling.export_mnist(config)
    assert not (tmp_path / "x").exists()


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("main.py: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_export_from_the_command_line(tmp_path):
    output, target = str(tmp_path / "output"), str(tmp_path / "synthetic")
    save_generators(output)
    result = run_main("--export-mnist", target, "--per-digit", "3", "--seed", "2", "--output-dir", output, "--export-source", "generator")
    assert result.returncode == 0, result.stderr
    assert "oneDNN" not in result.stderr
    assert "wrote 30 generated images" in result.stdout
    labels = read_idx(os.path.join(target, "train-labels-idx1-ubyte"))
    assert np.bincount(labels, minlength=10).tolist() == [3] * 10
    images = read_idx(os.path.join(target, "train-images-idx3-ubyte"))
    assert images.shape == (30, 28, 28) and images.dtype == np.uint8


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--per-digit", "0"], "--per-digit"),
        (["--per-digit", "many"], "--per-digit"),
        (["--export-format", "tar"], "--export-format"),
    ],
)
def test_bad_export_flags_are_one_line(tmp_path, args, fragment):
    assert_one_line_error(run_main("--export-mnist", str(tmp_path / "x"), *args), fragment)


def test_unwritable_export_target_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(run_main("--export-mnist", str(blocker / "sub"), "--output-dir", str(tmp_path)), "not writable")
    assert blocker.read_text() == "x"


def test_export_flags_need_the_export_action():
    assert_one_line_error(run_main("--evaluate", "--per-digit", "5"), "--per-digit goes with --export-mnist")
