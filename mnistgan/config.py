"""The frozen configuration every part of mnistgan reads, made once from the flags.

Presets bundle defaults: `default` is the recommended setting, `original`
is the seed project's configuration (docs/design.md), `fast` trades some
quality for minutes of wall time. An explicit flag overrides its preset value.
"""

import dataclasses
import math

from mnistgan import environment
from mnistgan.errors import UserError

# What a classifier trains on: generated digits, real ones, or batches that hold both (ClassifierConfig.synthetic_share).
DATA_SOURCES = ("synthetic", "real", "real+synthetic")
# The data sources that draw from the generators (generators.classifier_samplers).
GENERATED_SOURCES = ("synthetic", "real+synthetic")
# --export-mnist: MNIST's own IDX files, the same gzipped, or one .npz as Keras' mnist.npz holds it.
EXPORT_FORMATS = ("idx", "idx.gz", "npz")
# What an export draws from: what the synthetic classifier draws (its samplers, mixture and noise
# scale), or each digit's kept generator.keras at noise N(0, 1).
EXPORT_SOURCES = ("classifier", "generator")
# Images per digit an export may draw: 100,000 is 784 MB of uint8 images for the ten digits.
MAX_PER_DIGIT = 100_000
# The transforms of augment.POLICIES, named here so that flags are checked without TensorFlow.
AUGMENTATIONS = ("translation", "cutout")


# Model families (`--family`, families.py): which networks a GAN run trains. `dcgan` is mnist-gan's
# per-digit DCGAN with every technique; `mlp` the GAN notebooks' fully connected GAN, per digit;
# `cgan-mlp` cGAN_mnist's conditional GAN and `cdcgan` a conditional DCGAN, each one network for all digits.
FAMILIES = ("dcgan", "mlp", "cgan-mlp", "cdcgan")
CONDITIONAL_FAMILIES = ("cgan-mlp", "cdcgan")
# A family's recipe: the settings of its seed project, which replace the preset's (the run's length, snapshots
# and runs stay the preset's, except that preset `original` takes the project's own length, `own_steps`).
FAMILY_RECIPES = {
    "dcgan": {},
    # Udacity's gan_mnist notebook (and its Keras port): latent 100, Adam 2e-3 with beta1 0.9 for both
    # networks, batch 100, leaky ReLU 0.01, one-sided label smoothing 0.1; 100 epochs, 5,500 steps of a digit.
    "mlp": {
        "latent_dim": 100, "batch_size": 100, "learning_rate": 2e-3, "d_learning_rate": None, "beta1": 0.9,
        "leaky_slope": 0.01, "label_smoothing": 0.1, "minibatch_std_group": 0, "packing": 1, "coverage_focus": 0.0,
        "own_steps": 5500,
    },
    # cGAN_mnist's cgan_mnist.py: latent 100, Adam 2e-4 / beta1 0.5 for both networks, batch 32, real and
    # generated images in separate D batches, 20,000 steps.
    "cgan-mlp": {
        "latent_dim": 100, "batch_size": 32, "learning_rate": 2e-4, "d_learning_rate": None, "beta1": 0.5,
        "mixed_batches": False, "generator_step_dropout": True, "minibatch_std_group": 0, "packing": 1,
        "coverage_focus": 0.0, "own_steps": 20000,
    },
    # The per-digit DCGAN's networks and the preset's techniques, given the label (coverage focus weighs one
    # digit's images: a network of all digits has none to weigh; its D judges one image with its label, no packs).
    "cdcgan": {"generator_step_dropout": True, "packing": 1, "coverage_focus": 0.0},
}  # fmt: skip
# One conditional network stands in for ten per-digit ones: outside preset `original` it trains ten times the
# preset's steps, with samples, checkpoints and quality checks ten times as far apart, so that its snapshots
# span the same share of its run as a digit's do (steps 25,000-40,000 of 40,000, not 38,500-40,000).
CONDITIONAL_STEP_SCALE = 10
CONDITIONAL_SCALED_FIELDS = ("steps", "sample_every", "checkpoint_every", "eval_every")
# GanConfig fields that only the dcgan family's networks have, with the flag that sets each.
DCGAN_ONLY = {
    "minibatch_std_group": "--minibatch-std-group", "spectral_norm": "--spectral-norm", "packing": "--packing",
    "generator_width": "--generator-width", "discriminator_width": "--discriminator-width",
}  # fmt: skip

_NOT_RECORDED = object()


def resumable(default, before_recorded=_NOT_RECORDED, later_runs_only=False):
    """A setting that a checkpoint cannot be resumed under once it changes.

    Args:
      default: the field's default.
      before_recorded: for a setting added later, the value that runs recorded
        before it existed trained with, so that their folders still resume.
      later_runs_only: the setting changes only runs 2, 3, ... of a digit; run 1
        trains the same under any value, so it resumes (or stays finished) when it changes.
    """
    metadata = {"resume": True, "later_runs_only": later_runs_only}
    if before_recorded is not _NOT_RECORDED:
        metadata["before_recorded"] = before_recorded
    return dataclasses.field(default=default, metadata=metadata)


def resume_keys(config_class, run=2):
    """The fields of `config_class` declared with `resumable` that run `run` (1-based) cannot be resumed under
    once they change: all of them but, for run 1, those declared `later_runs_only`."""
    fields = dataclasses.fields(config_class)
    return tuple(f.name for f in fields if f.metadata.get("resume") and (run > 1 or not f.metadata["later_runs_only"]))


def values_before_recorded(config_class):
    """{field: value} that records made before the field existed ran with."""
    return {f.name: f.metadata["before_recorded"] for f in dataclasses.fields(config_class) if "before_recorded" in f.metadata}


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """One per-digit DCGAN run."""

    latent_dim: int = resumable(32)
    steps: int = 3000
    batch_size: int = resumable(32)
    learning_rate: float = resumable(2e-4)
    # The discriminator's Adam rate; None: `learning_rate` (as before it was recorded).
    d_learning_rate: float | None = resumable(None, before_recorded=None)
    beta1: float = resumable(0.5)
    leaky_slope: float = resumable(0.01)
    # Keras dtype policy of both networks: "float32", "mixed_bfloat16", or "auto": bfloat16 where it is
    # faster on the machine (precision.py). A run keeps the one it started in; "auto" resumes any.
    precision: str = resumable("auto")
    # Show D real and fake images in one batch (see gan_step.GanStep._judge_pair).
    mixed_batches: bool = resumable(True)
    # Keep D's dropout on while it judges the generator's images in the
    # generator step; the original switched it off there (keep_prob 1.0).
    generator_step_dropout: bool = resumable(True, before_recorded=True)
    # Momentum of the generator weight average that is sampled and saved (0:
    # none). Off by default: 0.995 measured no better and 8% slower (docs/techniques.md).
    ema_momentum: float = resumable(0.0)
    # Re-estimate the generator's batch-norm statistics from fresh samples
    # before each sample grid, check and save (see gan_monitor.calibrated_generator);
    # False samples with the moving averages, as the original did.
    recalibrate_batch_norm: bool = True
    # Momentum of the generator's batch-norm moving averages, which sampling
    # uses when they are not recalibrated (the original's decay was 0.9).
    batch_norm_momentum: float = 0.99
    # A name in losses.LOSSES.
    loss: str = resumable("non_saturating", before_recorded="non_saturating")
    # Differentiable augmentation before D, a comma list of augment.POLICIES ("": none).
    augment: str = resumable("", before_recorded="")
    # Weight gamma of the R1 gradient penalty on real images (0: none); D's loss gains gamma / 2 * R1.
    r1_gamma: float = resumable(0.0, before_recorded=0.0)
    # Group size of D's minibatch standard deviation feature (0: no such feature).
    minibatch_std_group: int = resumable(0, before_recorded=0)
    # Weight of the mode-seeking term in G's loss (losses.mode_seeking_penalty; 0: none).
    mode_seeking_weight: float = resumable(0.0, before_recorded=0.0)
    # Spectral normalisation of every D layer with a kernel, in place of D's batch norm.
    spectral_norm: bool = resumable(False, before_recorded=False)
    # Multipliers of G's and of D's hidden widths (networks.widened; 1: the original's).
    generator_width: float = resumable(1.0, before_recorded=1.0)
    discriminator_width: float = resumable(1.0, before_recorded=1.0)
    # Images D judges as one, stacked as channels (PacGAN; 1: none). A step draws batch_size
    # packs of real and of generated images, so G makes batch_size * packing images.
    packing: int = resumable(1, before_recorded=1)
    # The last share of the steps over which both learning rates fall linearly to zero (0: constant).
    lr_decay_fraction: float = resumable(0.0, before_recorded=0.0)
    # Runs 2, 3, ... of a digit draw real images with probability proportional to their evaluator-feature
    # distance to the earlier runs' samples, to this power (coverage.py; 0: uniformly).
    coverage_focus: float = resumable(0.0, before_recorded=0.0, later_runs_only=True)
    # Every this many steps (a multiple of checkpoint_every) a run also redraws its real images toward those its
    # own generator covers worst, to the power coverage_focus, which then steers run 1 too (coverage.py; 0: never).
    coverage_refresh: int = resumable(0, before_recorded=0)
    # The networks (FAMILIES; families.py).
    family: str = resumable("dcgan", before_recorded="dcgan")
    # One-sided label smoothing: D's target for real images is 1 - this (0: none; the mlp family's recipe: 0.1).
    label_smoothing: float = resumable(0.0, before_recorded=0.0)
    # The run learns from the first this many training images of each digit (data.first_per_digit; 0: all 55,000).
    real_per_digit: int = resumable(0, before_recorded=0)
    # Weight in D's loss of real images of the other nine digits judged as "not this digit" (Rumi-GAN's
    # negatives; 0: none). Each D step shows as many of them as generated images (gan_step.GanStep).
    negative_weight: float = resumable(0.0, before_recorded=0.0)
    # Each negative's term weighted by D's probability that it is real to this power (a focal loss: the
    # negatives D already tells apart fade; 0: every negative alike).
    negative_focus: float = resumable(0.0, before_recorded=0.0)
    # Steps over which the negatives' weight rises linearly from 0 to negative_weight (0: full from the first
    # step): a digit's GAN that sees them from the start can stall (digit 1 of the fast preset, issue 45).
    negative_warmup: int = resumable(0, before_recorded=0)
    sample_every: int = 250
    checkpoint_every: int = 500
    # Generated samples in the held-out discriminator accuracy measurement.
    heldout_samples: int = 500
    # Steps between quality measurements with the evaluator (0: none); the
    # best generator so far (lowest Fréchet distance) is kept as generator.keras.
    eval_every: int = 500
    # Generated samples per quality measurement during training (the cheap setting).
    eval_samples: int = 500
    # Measurements in a row with a worse Fréchet distance that flag a decline.
    decline_patience: int = 3
    # Stop a digit early once a decline is flagged.
    stop_on_decline: bool = False
    # The generators of this many last checkpoints are also kept, as snapshots/step-N.keras,
    # for a classifier that draws from their mixture (0: none).
    snapshots: int = 0
    # Independent GAN runs per digit, each with its own seed and folder (run 1 is output/digit-d/,
    # run r is output/digit-d/run-r/); a classifier with snapshot_mixture draws from all their snapshots.
    runs_per_digit: int = 1

    @property
    def uses_evaluator(self):
        """Whether training needs the evaluator: to select generators, or to weigh coverage-targeted runs."""
        return self.eval_every > 0 or (self.coverage_focus > 0 and (self.runs_per_digit > 1 or self.coverage_refresh > 0))


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """The Deep MNIST classifier run."""

    steps: int = 20000
    batch_size: int = resumable(50)
    learning_rate: float = resumable(1e-4)
    # As GanConfig.precision.
    precision: str = resumable("auto")
    # Width of the penultimate layer (1024 in the tutorial network).
    feature_size: int = resumable(1024)
    # Standard deviation of the generators' input noise in the synthetic stream (they trained at 1).
    noise_scale: float = resumable(1.0, before_recorded=1.0)
    # Digits streamed at their own noise scale in place of noise_scale: "digit=scale" pairs in digit order,
    # e.g. "5=1.0,9=0.9" (parse_digit_noise_scales; "": none).
    digit_noise_scales: str = resumable("", before_recorded="")
    # Draw each digit from its generator's kept snapshots (equal shares) instead of generator.keras.
    snapshot_mixture: bool = resumable(False, before_recorded=False)
    # Discriminator rejection sampling: each streamed image is chosen from this many by its run's D (rejection.py; 1: none).
    rejection_candidates: int = resumable(1, before_recorded=1)
    # The real training images it may use: the first this many of each digit (data.first_per_digit; 0: all).
    real_per_digit: int = resumable(0, before_recorded=0)
    # Share of each real+synthetic batch that is generated, in (0, 1): round(share * batch_size) images
    # (classifier.MixedStream); the other sources ignore it.
    synthetic_share: float = resumable(0.5, before_recorded=0.5)
    eval_every: int = 1000
    checkpoint_every: int = 1000

    def __post_init__(self):
        # A digit at noise_scale's own value streams as if unnamed: drop it, so a resume sees no changed setting.
        kept = (f"{digit}={scale}" for digit, scale in self._named_scales().items() if scale != self.noise_scale)
        object.__setattr__(self, "digit_noise_scales", ",".join(kept))

    def _named_scales(self):
        pairs = (pair.split("=") for pair in self.digit_noise_scales.split(",") if pair)
        return {int(d): float(scale) for d, scale in pairs}

    def noise_scale_of(self, digit):
        """The standard deviation of the noise `digit`'s generators are fed in the stream."""
        return self._named_scales().get(digit, self.noise_scale)

    def generated_per_batch(self, data_source):
        """Generated images in each batch of `data_source` (DATA_SOURCES), in [0, batch_size]: all of them for
        synthetic, none for real, round(synthetic_share * batch_size) for real+synthetic (a half rounds up)."""
        if data_source == "real+synthetic":
            return math.floor(self.synthetic_share * self.batch_size + 0.5)
        return self.batch_size if data_source == "synthetic" else 0


ENGINES = ("local", "ray")

PRESETS = {
    # Each choice decided on validation (docs/techniques.md): D's minibatch standard deviation,
    # D at a quarter of G's rate judging packs of two images (PacGAN), two runs of 4,000 steps per
    # digit, the second drawing its real images toward those the first covers worst (coverage focus 2),
    # and a classifier stream that draws each digit from both runs' last four checkpoints' generators
    # with the noise widened to 1.2.
    "default": (
        GanConfig(
            steps=4000, d_learning_rate=5e-5, minibatch_std_group=4, packing=2, snapshots=4, runs_per_digit=2,
            coverage_focus=2.0,
        ),
        ClassifierConfig(noise_scale=1.2, snapshot_mixture=True),
    ),
    # The seed's settings; it kept the last generator and sampled with moving
    # batch-norm statistics, so no quality checks and no recalibration.
    "original": (
        GanConfig(
            steps=20000,
            precision="float32",
            mixed_batches=False,
            generator_step_dropout=False,
            eval_every=0,
            recalibrate_batch_norm=False,
            batch_norm_momentum=0.9,
        ),
        ClassifierConfig(steps=20000, precision="float32"),
    ),
    # The default's recipe without packing, with one run per digit and half the classifier's steps, to fit 30 minutes
    # (docs/results.md): 10,000 classifier steps scored as high on validation as 20,000 here.
    "fast": (
        GanConfig(steps=4000, d_learning_rate=5e-5, minibatch_std_group=4, snapshots=4, sample_every=200),
        ClassifierConfig(steps=10000, noise_scale=1.2, snapshot_mixture=True),
    ),
    # The default's recipe before coverage focus and packing, with four independent runs per digit: the most
    # variety within about two hours (docs/results.md).
    "best": (
        GanConfig(steps=4000, d_learning_rate=5e-5, minibatch_std_group=4, snapshots=4, runs_per_digit=4),
        ClassifierConfig(noise_scale=1.2, snapshot_mixture=True),
    ),
}


def _shown(value):
    """A setting as a flag's help writes it: on/off for booleans, "none" for unset."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def preset_values(field, stage="gan"):
    """How the presets set one field, for a flag's help, e.g. "default, best 4; original, fast 0".

    Read from PRESETS, so the help never goes stale; presets that agree share an entry.

    Args:
      field: a `GanConfig` (stage "gan") or `ClassifierConfig` (stage "classifier") field name.
    """
    by_value = {}
    for name, configs in PRESETS.items():
        value = getattr(configs[0 if stage == "gan" else 1], field)
        by_value.setdefault(value, []).append(name)
    return "; ".join(f"{', '.join(names)} {_shown(value)}" for value, names in by_value.items())


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """A synthetic MNIST drawn from the ten generators (`--export-mnist`).

    Attributes:
      folder: where the files go.
      per_digit: images drawn per digit, in [1, MAX_PER_DIGIT].
      file_format: one of EXPORT_FORMATS.
      source: one of EXPORT_SOURCES.
    """

    folder: str = ""
    per_digit: int = 6000
    file_format: str = "idx"
    source: str = "classifier"


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one invocation of main.py does.

    Attributes:
      action: "fetch-mnist", "train-digits", "train-mnist", "evaluate" or "export-mnist".
      digits: digits to train (`train-digits`) or measure (`evaluate`), sorted.
      data_sources: classifier training data, a subset of DATA_SOURCES.
      mnist_dir: where MNIST is cached (or put by the user).
      output_dir: root of everything a run writes.
      seed: seed of every random choice.
      restart: start over instead of resuming.
      eval_samples: generated images per digit that `evaluate` measures.
      compare_with: other output folders whose report rows `evaluate` shows beside this one's.
      export: what `export-mnist` writes.
      workers: digits trained at once, each in its own process (1: one
        after another in this process).
      command: the command line this config was made from, as run records note it.
      engine: where `train-digits` runs its jobs: "local" (workers.py) or "ray" (cluster.py).
      address: the Ray cluster to use ("auto", "HOST:PORT"); "" starts a Ray instance of this machine's own.
      machine_precision: what a precision of "auto" stands for on this machine ("float32" or
        "mixed_bfloat16"; precision.py), decided once per command; "": not decided yet.
      gan: GAN hyperparameters.
      classifier: classifier hyperparameters.
    """

    action: str
    digits: tuple = ()
    data_sources: tuple = ("synthetic",)
    mnist_dir: str = "data/mnist"
    output_dir: str = "output"
    seed: int = 0
    restart: bool = False
    eval_samples: int = 8000
    compare_with: tuple = ()
    export: ExportConfig = ExportConfig()
    workers: int = 1
    command: str = ""
    engine: str = "local"
    address: str = ""
    machine_precision: str = ""
    preset: str = "default"
    gan: GanConfig = GanConfig()
    classifier: ClassifierConfig = ClassifierConfig()


# Memory one GAN worker process holds at its peak (1,080 MiB measured, docs/performance.md), with a margin: 1.2 GiB.
WORKER_MEMORY_BYTES = 1200 * 2**20


def default_workers(cores=None, available_bytes=None):
    """Worker processes for --train-digits: one per core, as many as the memory available holds.

    Two one-thread workers trained the ten digits fastest on the 2-core machines this project is
    measured on (docs/performance.md); one per core beyond two is inferred from that, not measured.
    The runs left to train cap it again when the work is handed out (workers.train_digits).

    Args:
      cores: the cores this process may use (default: environment.usable_cores(), within a container's quota;
        where a GPU trains, one worker).
      available_bytes: memory available to new processes (default: environment.available_memory_bytes(), within
        a container's limit; None there: not known, no cap).
    """
    if cores is None and environment.gpu_present():
        return 1  # One process trains on the GPU; several would each claim its memory.
    cores = cores or environment.usable_cores()
    if available_bytes is None:
        available_bytes = environment.available_memory_bytes()
    fit = cores if available_bytes is None else available_bytes // WORKER_MEMORY_BYTES
    return max(1, min(cores, fit))


def parse_digits(items, flag="--train-digits"):
    """Turns the items of a digit-list flag into a sorted tuple of distinct digits.

    Args:
      items: strings, as absl's list flag splits "0,1,9".
      flag: the flag's name, for messages.

    Raises:
      UserError: for an empty list or item, a non-integer, a digit outside
        0-9, or a digit given twice.
    """
    if not items:
        raise UserError(f"{flag}: give at least one digit 0-9, e.g. {flag} 0,1,2")
    digits = []
    for item in items:
        item = item.strip()
        if not item:
            raise UserError(f"{flag}: empty item in the list; expected digits 0-9 separated by commas")
        try:
            digit = int(item)
        except ValueError:
            raise UserError(f"{flag}: {item!r} is not an integer; expected digits 0-9 separated by commas") from None
        digits.append(_unseen_digit(digit, digits, flag))
    return tuple(sorted(digits))


def _unseen_digit(digit, seen, flag):
    """`digit`, checked to be 0-9 and not among `seen` (the flag's earlier items).

    Raises:
      UserError: naming the flag and the digit.
    """
    if not 0 <= digit <= 9:
        raise UserError(f"{flag}: {digit} is outside 0-9")
    if digit in seen:
        raise UserError(f"{flag}: digit {digit} is given twice")
    return digit


def parse_augment(text, flag="--augment"):
    """Checks a comma list of AUGMENTATIONS; returns it normalised ("translation,cutout"; "" for none).

    Raises:
      UserError: naming an unknown transform and the known ones.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in AUGMENTATIONS:
            raise UserError(f"{flag}: unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")
    return ",".join(names)


def parse_digit_noise_scales(text, flag="--digit-noise-scales"):
    """Checks "digit=scale" pairs (comma-separated); returns them normalised in digit order ("5=1.0,9=0.9"; "" for none).

    Raises:
      UserError: a pair that is not digit=scale, a digit outside 0-9 or given twice, or a scale below 0.01 (as --noise-scale's).
    """
    scales = {}
    for pair in (part.strip() for part in text.split(",") if part.strip()):
        digit, _, scale = pair.partition("=")
        try:
            digit, scale = int(digit), float(scale)
        except ValueError:
            raise UserError(f"{flag}: {pair!r} is not digit=scale (e.g. 5=1.0)") from None
        _unseen_digit(digit, scales, flag)
        if not 0.01 <= scale < math.inf:
            raise UserError(f"{flag}: digit {digit}'s scale {scale} is below 0.01 or not a number")
        scales[digit] = scale
    return ",".join(f"{digit}={scales[digit]}" for digit in sorted(scales))


def family_config(gan, preset, family):
    """The preset's `GanConfig` `gan` with the recipe of `family` (FAMILY_RECIPES) in place of its own."""
    recipe = dict(FAMILY_RECIPES[family])
    own_steps = recipe.pop("own_steps", None)
    if preset == "original" and own_steps:
        recipe["steps"] = own_steps
    elif family in CONDITIONAL_FAMILIES:
        recipe.update({field: getattr(gan, field) * CONDITIONAL_STEP_SCALE for field in CONDITIONAL_SCALED_FIELDS})
    return dataclasses.replace(gan, family=family, **recipe)


def check_family(gan):
    """Refuses settings the family's networks do not have.

    Raises:
      UserError: naming the flag, e.g. "--packing: the mlp family's discriminator ...".
    """
    plain = GanConfig()
    if gan.family == "cdcgan":  # The DCGAN's networks, given the label; packing and spectral norm are not built for them.
        unsupported = {field: DCGAN_ONLY[field] for field in ("packing", "spectral_norm")}
    elif gan.family == "dcgan":
        unsupported = {}
    else:
        unsupported = DCGAN_ONLY
    for field, flag in unsupported.items():
        if getattr(gan, field) != getattr(plain, field):
            raise UserError(f"{flag} changes the dcgan family's networks; the {gan.family} family's networks have no such part")
    if gan.family in CONDITIONAL_FAMILIES:
        if gan.coverage_focus > 0:
            raise UserError(f"--coverage-focus weighs one digit's images; the {gan.family} family trains one network for all digits")
        if gan.negative_weight > 0:
            raise UserError(f"--negative-weight shows a digit's GAN the other digits; the {gan.family} family learns every digit with its label")
        if not gan.generator_step_dropout:
            raise UserError(f"the {gan.family} family keeps D's dropout in the generator step (its D takes two inputs)")


def with_overrides(base, **overrides):
    """`base` with every override that is not None applied."""
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
