"""Discriminator rejection sampling (Azadi et al. 2019) for the classifier's stream, with each run's own D.

A GAN's discriminator, at its end, scores how far a generated image lies from
the real ones it learned from. DRS keeps image x with probability

  p(x) = sigmoid(F(x) - gamma),  F(x) = D(x) - D* - log(1 - exp(D(x) - D* - eps)),

D(x) its logit and D* the largest logit seen (the burn-in's, or the pool's).
Here each image the stream asks for is chosen from `candidates` fresh ones
in proportion to p (weighted sampling without replacement, by the Gumbel top-k
trick), so every draw still yields exactly the images asked for; gamma is the
pool's GAMMA_PERCENTILE-th percentile of F, as the paper sets it per batch.

The filter is the GAN's own D, which saw only unlabelled images of its digit;
never the evaluator, which learned from labelled real digits and would hand
that knowledge to the "generated only" classifier.

A packed D (PacGAN, `packing` k > 1) judges k images at once. At its optimum
its logit is the sum of the k images' log density ratios, log p_data/p_g, so
image x's own term is the logit of a pack of x and k - 1 partners less the
partners' terms. The partners here are PARTNER_SETS fixed sets of generated
images drawn once per sampler, and D(x) is the mean logit of x packed with each
set in turn: every x meets every set once, so the partners add the same
constant to every score (the burn-in's too), which cancels in D(x) - D*.
Neighbouring images meet different sets in the same D call, so that each group
of D's minibatch standard deviation (up to PARTNER_SETS packs) sees varied
partners, as it saw varied generated images in training.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from mnistgan import config as config_lib, families, generators, outputs

GAMMA_PERCENTILE = 95.0
BURN_IN = 2000
EPSILON = 1e-6
# Images per call when drawing in numpy (the export, --evaluate): candidates times this many go through G and D at once.
IMAGES_PER_CALL = 500
# Sets of generated partners each image is packed with to score it by a packed D (each set one more D call per
# candidate); at least the default preset's minibatch standard deviation group of 4.
PARTNER_SETS = 4


def load_discriminator(output_dir, entry, digit):
    """The discriminator of the last checkpoint of the run that made `entry`, built with the run's recorded
    settings, for inference.

    Raises:
      UserError: as `generators.discriminator_run`, or a damaged checkpoint.
    """
    folder, settings = generators.discriminator_run(output_dir, entry, digit)
    checkpoint = outputs.latest_checkpoint(outputs.training_files(folder).checkpoints, generators.retrain_digit(digit))
    known = {f.name for f in dataclasses.fields(config_lib.GanConfig)}
    cfg = dataclasses.replace(config_lib.GanConfig(), **{k: v for k, v in settings.items() if k in known})
    discriminator = families.build_discriminator(cfg)
    tf.train.Checkpoint(discriminator=discriminator).restore(checkpoint).expect_partial()
    return discriminator


def log_acceptance(logits, max_logit, percentile=GAMMA_PERCENTILE):
    """log p(x) of DRS for float32 logits (n,), given the largest logit seen so far."""
    top = tf.maximum(max_logit, tf.reduce_max(logits))
    delta = logits - top
    f = delta - tf.math.log(1.0 - tf.exp(delta - EPSILON))
    sorted_f = tf.sort(f)
    index = tf.cast(tf.round(percentile / 100.0 * tf.cast(tf.size(f) - 1, tf.float32)), tf.int32)
    return tf.math.log_sigmoid(f - sorted_f[index])


class RejectionSampler(generators.Sampler):
    """A `Sampler` whose images pass its run's discriminator: each one chosen from `candidates` by DRS weight.

    Args:
      sampler: the plain sampler (model, entry, noise scale, label).
      discriminator: its run's D (`load_discriminator`): float32 (n, 28, 28, k) -> (n, 1) logits, k the
        run's packing (the channels of its input).
      candidates: generated images per image kept (>= 2).
      seed: an int or a list of ints; seeds the burn-in that estimates D* and a packed D's partners.
    """

    def __init__(self, sampler, discriminator, candidates, seed=0):
        super().__init__(sampler.model, sampler.entry, sampler.noise_scale)
        self.discriminator, self.candidates = discriminator, candidates
        packing = discriminator.input_shape[-1]
        self.partners = None
        if packing > 1:  # (PARTNER_SETS, 28, 28, packing - 1): each set's images as the channels after the judged image's.
            partners = generators.Sampler.draw(self, PARTNER_SETS * (packing - 1), [*np.atleast_1d(seed).tolist(), packing])
            self.partners = tf.constant(np.moveaxis(partners[..., 0].reshape(PARTNER_SETS, packing - 1, *partners.shape[1:3]), 1, -1))
        burn_in = generators.Sampler.draw(self, BURN_IN, seed)
        parts = range(0, BURN_IN, IMAGES_PER_CALL)  # Scored in parts, as draw() scores its candidates.
        self.max_logit = max(float(np.max(self._logits(tf.constant(burn_in[start : start + IMAGES_PER_CALL])))) for start in parts)

    def _logits(self, images):
        """D's float32 logit of each image (n, 28, 28, 1) alone: (n,); for a packed D, its mean over the partner sets."""
        if self.partners is None:
            return tf.cast(self.discriminator(images, training=False), tf.float32)[:, 0]
        count = tf.shape(images)[0]
        total = tf.zeros([count], tf.float32)
        for turn in range(PARTNER_SETS):  # Image i meets set (i + turn) mod PARTNER_SETS.
            partners = tf.gather(self.partners, (tf.range(count) + turn) % PARTNER_SETS)
            total += tf.cast(self.discriminator(tf.concat([images, partners], axis=-1), training=False), tf.float32)[:, 0]
        return total / PARTNER_SETS

    def sample(self, rng, count):
        """`count` images kept from `count * candidates` fresh ones, by `rng` (a tf.random.Generator): (count, 28, 28, 1)."""
        images = self(rng.normal([count * self.candidates, self.latent_dim]))
        log_p = log_acceptance(self._logits(images), self.max_logit)
        gumbel = -tf.math.log(-tf.math.log(rng.uniform([count * self.candidates], 1e-20, 1.0)))
        return tf.gather(images, tf.math.top_k(log_p + gumbel, count).indices)

    def draw(self, count, seed):
        """`count` kept images, seeded by `seed` (an int or a list of ints): float32 numpy (count, 28, 28, 1)."""
        rng = tf.random.Generator.from_seed(int(np.random.default_rng(seed).integers(2**62)))
        parts = [self.sample(rng, min(IMAGES_PER_CALL, count - start)).numpy() for start in range(0, count, IMAGES_PER_CALL)]
        return np.concatenate(parts) if parts else np.zeros((0, *generators.IMAGE_SHAPE), np.float32)

    def describe(self):
        return {**super().describe(), "rejection_candidates": self.candidates}


def filtered(output_dir, samplers_by_digit, digits, candidates):
    """Each sampler of `samplers_by_digit` (lists in `digits` order) wrapped in a `RejectionSampler` with its run's D."""
    cache = {}
    result = []
    for digit, samplers in zip(digits, samplers_by_digit):
        wrapped = []
        for index, sampler in enumerate(samplers):
            run = sampler.entry.run
            if (digit, run) not in cache:
                cache[digit, run] = load_discriminator(output_dir, sampler.entry, digit)
            wrapped.append(RejectionSampler(sampler, cache[digit, run], candidates, seed=[digit, run, index]))
        result.append(wrapped)
    return result
