"""What a digit's GAN run shows and keeps: sample grids, the evolution strip, the generator and its snapshots."""

import os

import numpy as np
import tensorflow as tf

from mnistgan import data, images, outputs
from mnistgan.gan_monitor import fixed_noise

EVOLUTION_ROWS = 4
# Stands in for the digit in the fixed noise of a conditional family's grid.
CONDITIONAL_NOISE_KEY = 10
EVOLUTION_COLUMNS = 12
GRID_SIZE = 64
GRID_COLUMNS = 8


class DigitFiles:
    """The images and models of one digit's run in output/digit-d/ or output/digit-d/run-r/ (paths from outputs.py).

    Args:
      config: the whole `Config`.
      digit: 0-9.
      remedy: what to do about a damaged file of this digit.
      run: which of the digit's independent runs (1-based); the grids of all
        runs use the same fixed noise.
    """

    def __init__(self, config, digit, remedy, run=1):
        self.config, self.digit, self.remedy, self.run = config, digit, remedy, run
        self.output_dir = config.output_dir
        self.evolution_npz = outputs.evolution_npz_path(self.output_dir, digit, run)

    def save_samples(self, generator, step, writer):
        """The sample grid of `step` from the fixed noise, its row in the evolution strip, and TensorBoard's copy."""
        noise = fixed_noise(self.config.gan, self.config.seed, self.digit, GRID_SIZE)
        generated = data.to_uint8(generator(noise, training=False).numpy())
        self._save_samples(generated, generated[:EVOLUTION_ROWS], step, writer)

    def _save_samples(self, generated, evolution_images, step, writer):
        images.save_grid(outputs.sample_path(self.output_dir, self.digit, step, self.run), generated, columns=GRID_COLUMNS)
        steps, snapshots = self.load_evolution()
        keep = steps < step
        steps = np.append(steps[keep], step)
        snapshots = np.concatenate([snapshots[keep], evolution_images[np.newaxis]])
        with outputs.atomic_path(self.evolution_npz) as tmp:
            np.savez(tmp, steps=steps, images=snapshots)
        columns = images.pick_columns(len(steps), EVOLUTION_COLUMNS)
        strip = images.evolution_strip(steps[columns], snapshots[columns])
        images.save_png(outputs.evolution_path(self.output_dir, self.digit, self.run), strip)
        with writer.as_default(step=step):
            tf.summary.image("samples", data.to_float(images.tile(generated, GRID_COLUMNS, 1))[np.newaxis], max_outputs=1)

    def load_evolution(self):
        """The evolution snapshots so far: int (n,) steps and uint8 (n, EVOLUTION_ROWS, 28, 28) images."""
        remedy = f"delete it (the evolution strip then starts afresh) or {self.remedy}"
        arrays = outputs.read_npz(self.evolution_npz, remedy, ("steps", "images"))
        if arrays is None:
            return np.zeros((0,), np.int64), np.zeros((0, EVOLUTION_ROWS, 28, 28), np.uint8)
        steps, snapshots = arrays["steps"], arrays["images"]
        if steps.ndim != 1 or steps.dtype.kind != "i" or snapshots.shape != (len(steps), EVOLUTION_ROWS, 28, 28):
            raise outputs.damaged(self.evolution_npz, f"arrays of shape {steps.shape} and {snapshots.shape}", remedy)
        return steps, snapshots.astype(np.uint8)

    def save_generator(self, generator):
        self._save(generator, outputs.generator_path(self.output_dir, self.digit, self.run))

    def save_snapshot(self, generator, step, keep):
        """Saves the snapshot of `step`, then deletes all but the `keep` (>= 1) newest.

        So a run that is resumed with more steps keeps the last checkpoints'
        generators only, and the classifier's mixture, which draws from every
        file there, never mixes in those of the shorter run.
        """
        self._save(generator, outputs.snapshot_path(self.output_dir, self.digit, step, self.run))
        paths = outputs.snapshot_paths(self.output_dir, self.digit, self.run)
        for stale in paths[: max(len(paths) - keep, 0)]:
            os.remove(stale)

    @staticmethod
    def _save(model, path):
        with outputs.atomic_path(path) as tmp:
            model.save(tmp)


class ConditionalFiles(DigitFiles):
    """The images and models of a conditional family's run: its grid holds a row per digit it trains.

    The columns share GRID_COLUMNS fixed noise vectors; the evolution strip follows
    EVOLUTION_ROWS digits spread over the trained ones, each from the first noise vector.
    """

    def save_samples(self, generator, step, writer):
        digits = np.asarray(self.config.digits)  # The digits the network trains on (jobs.jobs_of).
        noise = fixed_noise(self.config.gan, self.config.seed, CONDITIONAL_NOISE_KEY, GRID_COLUMNS)
        labels = np.repeat(digits, GRID_COLUMNS).astype(np.int32)
        generated = data.to_uint8(generator([np.tile(noise, (len(digits), 1)), labels], training=False).numpy())
        rows = np.linspace(0, len(digits) - 1, EVOLUTION_ROWS).round().astype(int)
        self._save_samples(generated, generated[rows * GRID_COLUMNS], step, writer)
