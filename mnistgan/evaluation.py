"""Measuring generators: an evaluator network and per-digit quality metrics.

The evaluator is a CNN trained on the real training split only (cached in
output/evaluator/): all of it, or in a folder trained with `--real-per-digit N`
the first N images of each digit, as the GANs it steers (evaluator.json notes
N). Its penultimate layer gives the features of

  - the Fréchet distance between real and generated feature distributions,
  - improved precision and recall (Kynkäänniemi et al. 2019, k-NN manifolds),

and its softmax judges "class precision": the share of generated samples it
assigns to the intended digit. All metrics compare against validation images.
"""

import dataclasses
import functools
import os

import keras
import numpy as np
from absl import logging

from mnistgan import config as config_lib, data, locks, outputs
from mnistgan.errors import UserError

FEATURE_SIZE = 128
# The evaluator's acceptance gate, on validation images (test images only report).
MIN_VALIDATION_ACCURACY = 0.99
# The gate of one trained on the first N images of each digit (--real-per-digit), which cannot reach the
# whole data set's: it still catches a training that went wrong.
SCARCE_MIN_VALIDATION_ACCURACY = 0.9
NEIGHBOURS = 3
# Candidates in the k-NN precision / recall (memory grows with its square).
KNN_SAMPLES = 2000
# The evaluator's own training: a few epochs of Deep MNIST at a higher rate.
EVALUATOR_CONFIG = config_lib.ClassifierConfig(
    steps=4000, batch_size=100, learning_rate=1e-3, precision="float32", eval_every=1000, checkpoint_every=4000
)


class Evaluator:
    """Features and class probabilities of a trained evaluator model.

    Args:
      model: a classifier with a layer named "features" (see networks.build_classifier).
    """

    def __init__(self, model):
        self.model = model
        self.feature_model = keras.Model(model.input, [model.get_layer("features").output, model.output])

    def features_and_probabilities(self, float_images):
        """float32 (n, 28, 28, 1) in [0, 1] -> float64 (n, FEATURE_SIZE) features, (n, 10) probabilities."""
        features, logits = self.feature_model.predict(float_images, batch_size=500, verbose=0)
        logits = logits.astype(np.float64)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        return features.astype(np.float64), probabilities / probabilities.sum(axis=1, keepdims=True)


def load_or_train_evaluator(output_dir, mnist, config=EVALUATOR_CONFIG, seed=0, min_accuracy=None, announce=True):
    """The cached evaluator in output/evaluator/, trained on real training images if absent.

    Args:
      mnist: a `data.Mnist` whose training split it learns from when it is absent (all of it, or the first
        `mnist.real_per_digit` images of each digit); None when it is known to exist.
      min_accuracy: the validation accuracy it must reach, in [0, 1]; None: MIN_VALIDATION_ACCURACY, or
        SCARCE_MIN_VALIDATION_ACCURACY for a training split cut by `data.first_per_digit`.
      announce: log its accuracy (worker processes but the first load it quietly, so the line shows once).

    Raises:
      UserError: if it does not reach that accuracy on the validation split,
        or one of its files is damaged.
    """
    path, remedy = outputs.evaluator_files(output_dir)[0], outputs.evaluator_remedy(output_dir)
    with locks.waiting(output_dir, "evaluator"):  # Two commands on other digits may both need it: one trains it.
        record = outputs.read_evaluator_record(output_dir)
        if record is None or not os.path.exists(path):
            record = _train_evaluator(output_dir, mnist, config, seed, min_accuracy, remedy)
    model = outputs.load_keras_model(path, remedy)
    if announce:
        logging.info(
            "evaluator accuracy: validation %.4f, test %.4f (trained on %s)", record.get("validation_accuracy") or float("nan"),
            record["test_accuracy"], data.real_images_text(record.get("real_per_digit") or 0),
        )  # fmt: skip
    return Evaluator(model)


def _train_evaluator(output_dir, mnist, config, seed, min_accuracy, remedy):
    """Trains the evaluator on real training images into output/evaluator/; returns its record."""
    from mnistgan import classifier  # Deferred: the classifier module is only needed here.

    folder = outputs.evaluator_dir(output_dir)
    path, record_path = outputs.evaluator_files(output_dir)
    logging.info("training the evaluator network on %s (once; cached in %s)", data.real_images_text(mnist.real_per_digit), folder)
    if min_accuracy is None:
        min_accuracy = SCARCE_MIN_VALIDATION_ACCURACY if mnist.real_per_digit else MIN_VALIDATION_ACCURACY
    # run.json records the images it learns from, so a half-trained one resumes only on the same.
    cfg = dataclasses.replace(config, feature_size=FEATURE_SIZE, real_per_digit=mnist.real_per_digit)
    training = classifier.ClassifierTraining(cfg, seed, "real", folder, "evaluator", remedy)
    previous, checkpoint = training.read_back(run_ids=None)
    batches = functools.partial(classifier.real_batches, mnist, cfg.batch_size, seed)
    trainer = training.fit(mnist, previous or training.new_record(None), checkpoint, batches)
    accuracy = classifier.validation_accuracy(trainer, mnist)
    if accuracy < min_accuracy:
        raise UserError(f"the evaluator reached only {accuracy:.2%} validation accuracy (needs {min_accuracy:.0%})")
    with outputs.atomic_path(path) as tmp:
        trainer.model.save(tmp)
    test_accuracy = float(np.mean(trainer.predict(data.to_float(mnist.test_images)) == mnist.test_labels))
    record = {
        "validation_accuracy": accuracy,
        "test_accuracy": test_accuracy,
        # What it trained with: the images it learned from and its feature width, the precision it ran in.
        "config": dataclasses.asdict(training.cfg),
        "seed": seed,
        # What it learned from: the GAN runs it steers must have learned from the same (jobs.check_evaluator).
        "real_per_digit": mnist.real_per_digit,
    }
    outputs.write_json(record_path, record)
    return record


# ---- metrics ----


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """Fréchet distance between Gaussians N(mean_a, cov_a) and N(mean_b, cov_b).

    tr(sqrt(A B)) is computed as tr(sqrt(sqrt(A) B sqrt(A))), a symmetric
    positive semi-definite matrix, so only symmetric eigendecompositions are
    needed: stable even for singular covariances.
    """
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def frechet_distance_of(features_a, features_b):
    """Fréchet distance between the Gaussians fitted to two (n, d) feature sets."""
    return frechet_distance(
        features_a.mean(axis=0), np.cov(features_a, rowvar=False), features_b.mean(axis=0), np.cov(features_b, rowvar=False)
    )


def _pairwise_distances(a, b):
    squared = np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(squared, 0, None))


def _knn_radii(features, k):
    distances = _pairwise_distances(features, features)
    return np.sort(distances, axis=1)[:, k]  # Column 0 is the point itself.


def manifold_coverage(reference, samples, k=NEIGHBOURS):
    """Share of `samples` inside the k-NN manifold of `reference` (balls of k-th NN radius)."""
    radii = _knn_radii(reference, k)
    inside = _pairwise_distances(samples, reference) <= radii[None, :]
    return float(np.mean(inside.any(axis=1)))


def precision_recall(real_features, fake_features, k=NEIGHBOURS):
    """Improved precision (fakes on the real manifold) and recall (reals on the fake manifold)."""
    return manifold_coverage(real_features, fake_features, k), manifold_coverage(fake_features, real_features, k)


@dataclasses.dataclass(frozen=True)
class Quality:
    """Quality of one set of images of one digit against that digit's validation images."""

    frechet_distance: float
    class_precision: float
    mean_confidence: float
    precision: float
    recall: float

    def as_dict(self):
        return {k: round(v, 5) for k, v in dataclasses.asdict(self).items()}


def measure(evaluator, real_images, candidate_images, digit, knn_samples=KNN_SAMPLES):
    """Compares candidate images of `digit` with real ones.

    Args:
      evaluator: an `Evaluator`.
      real_images, candidate_images: float32 (n, 28, 28, 1) in [0, 1].
      digit: the digit the candidates are meant to show.
      knn_samples: precision and recall use the first this many candidates;
        their pairwise distances grow with the square of the count.
    """
    real_features, _ = evaluator.features_and_probabilities(real_images)
    fake_features, probabilities = evaluator.features_and_probabilities(candidate_images)
    precision, recall = precision_recall(real_features, fake_features[:knn_samples])
    return Quality(
        frechet_distance=frechet_distance_of(real_features, fake_features),
        class_precision=float(np.mean(np.argmax(probabilities, axis=1) == digit)),
        mean_confidence=float(np.mean(probabilities[:, digit])),
        precision=precision,
        recall=recall,
    )
