"""The owner token of a run: an attempt that a newer one took over stops before it writes again."""

import os

import pytest

from mnistgan import gan, outputs
from mnistgan.ownership import Attempt, Superseded
from tests.conftest import blob_images, tiny_config


def test_the_last_claim_owns_the_folder(tmp_path):
    first, second = Attempt("node-a"), Attempt("node-b")
    first.claim(str(tmp_path))
    first.check(str(tmp_path))
    second.claim(str(tmp_path))
    second.check(str(tmp_path))
    with pytest.raises(Superseded, match="on node-b.*this attempt on node-a stops"):
        first.check(str(tmp_path))


def test_a_superseded_attempt_writes_nothing_after_the_takeover(tmp_path, monkeypatch):
    import tensorflow as tf

    config = tiny_config(tmp_path, steps=6)
    folder = outputs.digit_dir(config.output_dir, 3)
    save = tf.train.CheckpointManager.save

    def save_then_lose_the_folder(manager, checkpoint_number=None, **kwargs):
        path = save(manager, checkpoint_number=checkpoint_number, **kwargs)
        if checkpoint_number == 2:
            Attempt("elsewhere").claim(folder)  # A retry on another node takes the run over.
        return path

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_lose_the_folder)
    training = gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1), attempt=Attempt("here"))
    with pytest.raises(Superseded):
        training.train()
    assert outputs.checkpoint_step(tf.train.latest_checkpoint(os.path.join(folder, "checkpoints"))) == 2
    assert sorted(os.listdir(os.path.join(folder, "samples"))) == ["step-000000.png", "step-000002.png"]
    with open(outputs.digit_metrics_path(config.output_dir, 3)) as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["2"]
