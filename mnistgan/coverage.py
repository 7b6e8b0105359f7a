"""Coverage-targeted runs, in the spirit of AdaGAN (Tolstikhin et al. 2017).

With `coverage_focus` > 0, run r >= 2 of a digit draws its real batches weighted
toward the training images that the digit's earlier runs cover worst. How badly
an image is covered is its distance, in the evaluator's feature space (where
recall is measured), to the nearest of GENERATED_SAMPLES images drawn from the
earlier runs (their snapshots, else their kept generator, at noise N(0, 1)); it
is drawn with probability proportional to that distance to the power
`coverage_focus`. Only training images are read: validation stays untouched.

The weights, the distances and the earlier runs' ids are saved in the run's
coverage.npz before it trains, so a resumed run draws with the same ones.

With `coverage_refresh` > 0 a run also steers itself, so that one run gets some of a second
run's variety: every `coverage_refresh` steps (at a checkpoint) it measures the same distances
to GENERATED_SAMPLES images of its own generator at that step (and keeps, for run r >= 2, the
nearer of those and the earlier runs' distance), and draws by them from then on. Each refresh's
weights are kept in the run's coverage-refresh.npz, keyed by step, before that step's
checkpoint, so a resumed run draws with the weights of the last refresh it had passed.
"""

import os
import time

import numpy as np

from mnistgan import generators, outputs
from mnistgan.errors import UserError

GENERATED_SAMPLES = 5000
# How often a run looks whether the earlier runs (trained by another worker of this command) have ended.
POLL_SECONDS = 5.0
NPZ_KEYS = ("weights", "distances", "earlier_run_ids")
REFRESH_KEYS = ("steps", "weights")
REFRESH_REMEDY = "delete it and start the run over with --restart (its draws since the first refresh depend on it)"


def nearest_distances(reference, queries, chunk=1000):
    """float64 (n,): each row of `queries` (n, d)'s Euclidean distance to its nearest row of `reference` (m, d)."""
    reference_squared = np.sum(reference**2, axis=1)
    distances = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        part = queries[start : start + chunk]
        squared = np.sum(part**2, axis=1)[:, None] + reference_squared[None, :] - 2 * part @ reference.T
        distances[start : start + chunk] = np.sqrt(np.clip(squared.min(axis=1), 0, None))
    return distances


def weights_from_distances(distances, focus):
    """Drawing probabilities float64 (n,) summing to 1, proportional to `distances` ** `focus` (uniform if all are 0)."""
    raw = np.power(np.maximum(np.asarray(distances, np.float64), 0.0), focus)
    total = raw.sum()
    return raw / total if total > 0 else np.full(len(raw), 1.0 / len(raw))


def wait_for_earlier_runs(output_dir, digit, run, message, poll=POLL_SECONDS):
    """Returns once runs 1 .. run - 1 of `digit` have ended (another worker of this command may still train one).

    Jobs go out run by run (jobs.jobs_of), so the runs waited for are always in
    progress or done, never queued behind this one.
    """
    told = False
    while True:
        waiting = [r for r in range(1, run) if generators.run_status(output_dir, digit, r) not in ("done", "failed")]
        if not waiting:
            return
        if not told:
            message(f"waiting for run(s) {', '.join(map(str, waiting))} to finish: this run draws toward what they miss")
            told = True
        time.sleep(poll)


def read_weights(path, count=None):
    """(weights, record) from a run's coverage.npz; None when there is none.

    Raises:
      UserError: a damaged file, or weights that do not fit `count` training images.
    """
    remedy = "delete it to compute the weights again (the run then draws with new ones), or start the run over with --restart"
    arrays = outputs.read_npz(path, remedy, NPZ_KEYS)
    if arrays is None:
        return None
    weights = arrays["weights"]
    valid = weights.ndim == 1 and np.all(np.isfinite(weights)) and np.all(weights >= 0) and abs(weights.sum() - 1) < 1e-6
    if not valid or (count is not None and len(weights) != count):
        raise outputs.damaged(path, f"its weights are not a distribution over the {count or 'digit'}'s training images", remedy)
    return weights, arrays


def run_weights(output_dir, folder, digit, run, focus, evaluator, train_images, seed, message):
    """The drawing probabilities of run `run`'s training images: read from its coverage.npz, else computed and saved.

    Args:
      folder: the run's folder.
      evaluator: an `evaluation.Evaluator`, whose features measure coverage.
      train_images: float32 (n, 28, 28, 1) in [0, 1], the digit's training images.
      seed: an int that seeds the noise of the earlier runs' samples.
      message: shows a line on the progress board.

    Returns:
      (weights float64 (n,) summing to 1, summary dict for run.json).
    """
    path = os.path.join(folder, "coverage.npz")
    found = read_weights(path, len(train_images))
    if found is not None:
        weights, arrays = found
        return weights, summary(weights, arrays["distances"], arrays["earlier_run_ids"], focus)
    wait_for_earlier_runs(output_dir, digit, run, message)
    samplers = generators.finished_run_samplers(output_dir, digit, range(1, run))
    generated = generators.draw_mixture(samplers, GENERATED_SAMPLES, seed)
    train_features, _ = evaluator.features_and_probabilities(train_images)
    distances = distances_to(evaluator, generated, train_features)
    weights = weights_from_distances(distances, focus)
    ids = np.array(sorted({str(s.entry.run_id) for s in samplers}))
    with outputs.atomic_path(path) as tmp:
        np.savez(tmp, weights=weights, distances=distances, earlier_run_ids=ids)
    result = summary(weights, distances, ids, focus)
    earlier = "run 1 covers" if run == 2 else f"runs 1-{run - 1} cover"
    message(f"drawing toward what {earlier} worst: the most-weighted image {result['max_weight_vs_uniform']:.1f}x as often as uniform")
    return weights, result


def summary(weights, distances, ids, focus):
    """What run.json records about the weights."""
    return {
        "focus": focus,
        "earlier_run_ids": [str(i) for i in ids],
        "generated_samples": GENERATED_SAMPLES,
        "mean_distance": round(float(np.mean(distances)), 4),
        "max_weight_vs_uniform": round(float(np.max(weights) * len(weights)), 3),
    }


def distances_to(evaluator, generated, train_features):
    """float64 (n,): each training image's distance (evaluator features `train_features`, (n, d)) to the nearest of `generated`.

    Args:
      generated: float32 (m, 28, 28, 1) in [0, 1], generated images (earlier runs', or the run's own).
    """
    generated_features, _ = evaluator.features_and_probabilities(generated)
    return nearest_distances(generated_features, train_features)


def read_refreshes(path, count=None):
    """(steps int64 (k,), weights float64 (k, count)) from a run's coverage-refresh.npz; None when there is none.

    Raises:
      UserError: a damaged file, or weights that are not distributions over `count` training images.
    """
    arrays = outputs.read_npz(path, REFRESH_REMEDY, REFRESH_KEYS)
    if arrays is None:
        return None
    steps, weights = arrays["steps"], arrays["weights"]
    valid = (
        steps.ndim == 1 and weights.ndim == 2 and weights.shape[0] == len(steps) and count in (None, weights.shape[1])
        and np.all(np.isfinite(weights))
        and np.all(weights >= 0) and np.allclose(weights.sum(axis=1), 1, atol=1e-6) and np.all(np.diff(steps) > 0)
    )  # fmt: skip
    if not valid:
        images = f"{count} training images" if count else "training images"
        raise outputs.damaged(path, f"it does not hold one distribution over the digit's {images} per refresh step", REFRESH_REMEDY)
    return steps, weights


def refreshed_weights(path, step, count):
    """The weights of the last refresh at or before `step` in coverage-refresh.npz, or None (none yet)."""
    found = read_refreshes(path, count)
    if found is None:
        return None
    steps, weights = found
    passed = np.flatnonzero(steps <= step)
    return weights[passed[-1]] if len(passed) else None


def save_refresh(path, step, weights):
    """Adds the weights of the refresh at `step` to coverage-refresh.npz (atomically), dropping any of later steps
    (those of a run cut short between a refresh and its checkpoint, which the run redoes)."""
    found = read_refreshes(path, len(weights))
    steps, table = (np.zeros([0], np.int64), np.zeros([0, len(weights)])) if found is None else found
    keep = steps < step
    steps = np.append(steps[keep], step).astype(np.int64)
    table = np.vstack([table[keep], np.asarray(weights, np.float64)[None]])
    with outputs.atomic_path(path) as tmp:
        np.savez(tmp, steps=steps, weights=table)
