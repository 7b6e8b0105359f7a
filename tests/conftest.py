"""Shared fixtures: tiny configs and images made inside the tests (no network)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The machine's precision verdict (precision.py) is measured once for the test session's processes and kept
# beside pytest's own cache, not in the user's.
os.environ.setdefault("MNISTGAN_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache", "mnistgan"))

from mnistgan import config as config_lib, outputs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "main.py")
# `make test` runs set-up first, which verifies MNIST here.
REAL_MNIST_DIR = os.path.join(ROOT, "data", "mnist")


# The DCGAN families' networks at a quarter of their widths: the same layers, a sixteenth of the
# weights to checkpoint and save. Command-line tests train at main.py's presets' full widths, except those
# whose subject is not the networks (the engines, worker processes, faults, locks): they pass TINY_WIDTH_FLAGS.
TINY_WIDTHS = dict(generator_width=0.25, discriminator_width=0.25)
TINY_WIDTH_FLAGS = tuple(part for name, width in TINY_WIDTHS.items() for part in ("--" + name.replace("_", "-"), str(width)))


def tiny_config(tmp_path, **gan):
    settings = dict(steps=4, batch_size=8, sample_every=2, checkpoint_every=2, heldout_samples=16)
    if gan.get("family", "dcgan") in ("dcgan", "cdcgan"):  # The mlp families have no widths (config.check_family).
        settings.update(TINY_WIDTHS)
    settings.update(gan)
    return config_lib.Config(
        action="train-digits",
        digits=(3,),
        output_dir=str(tmp_path / "output"),
        gan=config_lib.GanConfig(**settings),
    )


def blob_images(count, seed=0):
    """uint8 (count, 28, 28): bright discs of random size and place, like crude digits."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    images = np.zeros((count, 28, 28), np.uint8)
    for i in range(count):
        cy, cx = rng.uniform(10, 18, 2)
        radius = rng.uniform(4, 8)
        images[i] = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2, 255, 0)
    return images


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def die_after_checkpoint(monkeypatch, step):
    """Makes tf.train.CheckpointManager.save raise `Killed` right after it saved checkpoint `step`."""
    import tensorflow as tf

    save = tf.train.CheckpointManager.save

    def save_then_die(manager, checkpoint_number=None, **kwargs):
        path = save(manager, checkpoint_number=checkpoint_number, **kwargs)
        if checkpoint_number == step:
            raise Killed()
        return path

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_die)


def assert_same_generators(output_a, output_b, digit=3):
    """Digit `digit`'s generator.keras in the two output folders holds the same weights, bit for bit."""
    import keras

    a = keras.models.load_model(outputs.generator_path(output_a, digit)).get_weights()
    b = keras.models.load_model(outputs.generator_path(output_b, digit)).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def run_main(*args, cwd=None, timeout=300, env=None):
    """Runs main.py as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, MAIN, *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout, env=env
    )


COMMANDS_SCRIPT = """
import json, multiprocessing.process, sys, main
from absl import flags
from mnistgan import commands
from mnistgan.errors import UserError
started = []  # Worker processes, each of which imports TensorFlow.
start = multiprocessing.process.BaseProcess.start
multiprocessing.process.BaseProcess.start = lambda process: started.append(process) or start(process)
for args in json.loads(sys.argv[1]):
    flags.FLAGS.unparse_flags()  # Each command parsed afresh, as if it ran alone.
    try:
        commands.execute(main.make_config(main._parse_flags(["main.py", *args])))
        print("accepted")
    except UserError as e:
        print(e)
print("started TensorFlow:", "tensorflow" in sys.modules or "keras" in sys.modules or bool(started))
"""


def outcomes_before_tensorflow(*commands):
    """Runs each command (main.py's flags) through `commands.execute` in one fresh Python.

    Returns:
      (one line per command: its refusal or "accepted", whether TensorFlow or Keras was imported by the end,
      here or in a process started).
    """
    result = subprocess.run(
        [sys.executable, "-c", COMMANDS_SCRIPT, json.dumps(commands)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(commands) + 1 and lines[-1].startswith("started TensorFlow: "), result.stdout + result.stderr
    return lines[:-1], lines[-1] == "started TensorFlow: True"


@pytest.fixture
def real_mnist_dir():
    if not os.path.isdir(REAL_MNIST_DIR):
        pytest.skip("real MNIST not set up; run `make test`, which fetches it first")
    return REAL_MNIST_DIR


# The slowest modules first, so that `make test`'s processes (pytest-xdist, a module each
# at a time) end at about the same time instead of one waiting on the other's last big module.
# The Makefile's --no-loadscope-reorder keeps this order (else xdist sorts by number of tests).
# By their CPU time, each module alone, on 2026-12-03 (s): faults 175, gan 160, cluster 150,
# workers 105, classifier 80, families 65, generators 45, evaluation 45, outputs 45, report 15;
# the rest 15 or less.
SLOWEST_FIRST = (
    "test_faults", "test_gan", "test_cluster", "test_workers", "test_classifier", "test_families", "test_generators",
    "test_evaluation", "test_outputs", "test_report",
)  # fmt: skip


def pytest_collection_modifyitems(items):
    def rank(item):
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return SLOWEST_FIRST.index(module) if module in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # Stable: within a module, the written order stays.
