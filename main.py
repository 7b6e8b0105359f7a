#!/usr/bin/env python3
"""mnistgan: train one DCGAN per MNIST digit, then a classifier on their output.

  ./main.py --train-digits 0,1,2,3,4,5,6,7,8,9   # one generator per digit -> output/digit-N/
  ./main.py --train-mnist --compare              # classifier: generated vs real data
  ./main.py --evaluate                           # the report -> output/report.md
  ./main.py --export-mnist synthetic --per-digit 6000   # a synthetic MNIST in IDX files

Every command resumes where it stopped; --restart starts over. Started with
any Python, it continues in the project's environment (.venv, made by `make setup`).
"""

# This file only turns flags into a `Config`; the work is in the `mnistgan` package.

import os
import re
import shlex
import sys

from mnistgan import environment  # Standard library only, so it runs before the environment is entered.

if __name__ == "__main__":
    environment.enter_project_env(__file__)
    environment.quiet_tensorflow_env()

from absl import app, flags  # noqa: E402

from mnistgan import config as config_lib, precision as precision_lib  # noqa: E402
from mnistgan.errors import UserError  # noqa: E402

_TRAIN_DIGITS = flags.DEFINE_list("train-digits", None, "Train one GAN per digit, e.g. 0,1,2,3,4,5,6,7,8,9.")
_TRAIN_MNIST = flags.DEFINE_boolean("train-mnist", False, "Train the classifier on the saved generators' output.")
_EVALUATE = flags.DEFINE_boolean("evaluate", False, "Measure the trained generators; write output/report.md and .json.")
_FETCH_MNIST = flags.DEFINE_boolean("fetch-mnist", False, "Only obtain and verify MNIST in --mnist-dir.")
_EXPORT_MNIST = flags.DEFINE_string(
    "export-mnist", None, "Write a synthetic MNIST drawn from the ten generators into this folder."
)

_MNIST_DIR = flags.DEFINE_string("mnist-dir", "data/mnist", "Folder with MNIST (IDX files or mnist.npz); filled if empty.")
_OUTPUT_DIR = flags.DEFINE_string("output-dir", "output", "Folder every run writes into.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random choice.", lower_bound=0)
_PRESET = flags.DEFINE_enum("preset", "default", list(config_lib.PRESETS), "Bundle of defaults for the flags below.")
_RESTART = flags.DEFINE_boolean("restart", False, "Start over instead of resuming from the last checkpoint.")

_PRECISION = flags.DEFINE_enum(
    "precision",
    None,
    list(precision_lib.FLAG_VALUES),
    "Arithmetic of the networks --train-digits and --train-mnist train: auto, bfloat16 where it is faster on this "
    "machine (measured once, then cached); float32; bfloat16. A run resumes in the precision it started in "
    f"(presets: {config_lib.preset_values('precision')}).",
)
_FAMILY = flags.DEFINE_enum(
    "family",
    "dcgan",
    list(config_lib.FAMILIES),
    "The GAN's networks and their seed project's recipe: dcgan, mnist-gan's per-digit DCGAN with every technique; "
    "mlp, the GAN notebooks' fully connected GAN, per digit; cgan-mlp, cGAN_mnist's conditional GAN, and cdcgan, a "
    "conditional DCGAN with a projection discriminator, each one network for all digits (output/<family>/).",
)
_STEPS = flags.DEFINE_integer(
    "steps", None, f"GAN training steps per run of a digit (presets: {config_lib.preset_values('steps')}).", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer("batch-size", None, f"GAN batch size (presets: {config_lib.preset_values('batch_size')}).", lower_bound=1)
_D_LEARNING_RATE = flags.DEFINE_float(
    "d-learning-rate",
    None,
    f"The discriminator's Adam learning rate; none: the generator's, 2e-4 (presets: {config_lib.preset_values('d_learning_rate')}).",
)
_LOSS = flags.DEFINE_enum("loss", None, ["non_saturating", "hinge"], "GAN loss (default: non_saturating).")
_AUGMENT = flags.DEFINE_string(
    "augment", None, "Differentiable augmentation before D: a comma list of translation, cutout; '' for none (default: none)."
)
_R1_GAMMA = flags.DEFINE_float("r1-gamma", None, "Weight of the R1 gradient penalty on real images (default: 0, none).", lower_bound=0)
_MINIBATCH_STD_GROUP = flags.DEFINE_integer(
    "minibatch-std-group", None, f"Group size of D's minibatch standard deviation feature; 0: none (presets: {config_lib.preset_values('minibatch_std_group')}).",
    lower_bound=0,
)
_MODE_SEEKING_WEIGHT = flags.DEFINE_float(
    "mode-seeking-weight",
    None,
    "Weight of the mode-seeking term in the generator's loss, which rewards different images for different noise; "
    f"0: none (presets: {config_lib.preset_values('mode_seeking_weight')}).",
    lower_bound=0,
)
_SPECTRAL_NORM = flags.DEFINE_boolean(
    "spectral-norm", None, f"Spectral normalisation of D's layers in place of its batch norm (presets: {config_lib.preset_values('spectral_norm')})."
)
_GENERATOR_WIDTH = flags.DEFINE_float(
    "generator-width",
    None,
    "Multiplier of the generator's hidden widths (1: the original's 1024, 7x7x64, 32; 4: TensorFlow's DCGAN tutorial's "
    f"channels) (presets: {config_lib.preset_values('generator_width')}).",
)
_DISCRIMINATOR_WIDTH = flags.DEFINE_float(
    "discriminator-width",
    None,
    f"Multiplier of the discriminator's hidden widths (1: the original's 32, 64, 1024) (presets: {config_lib.preset_values('discriminator_width')}).",
)
_PACKING = flags.DEFINE_integer(
    "packing",
    None,
    "Images the discriminator judges together, stacked as channels (PacGAN); 1: one at a time "
    f"(presets: {config_lib.preset_values('packing')}).",
    lower_bound=1,
)
_LR_DECAY = flags.DEFINE_float(
    "lr-decay",
    None,
    "Share of the last GAN steps over which both learning rates fall linearly to zero, in [0, 1); 0: constant "
    f"(presets: {config_lib.preset_values('lr_decay_fraction')}).",
)
_COVERAGE_FOCUS = flags.DEFINE_float(
    "coverage-focus",
    None,
    "Runs 2, 3, ... of a digit draw real images in proportion to their distance from the earlier runs' samples "
    f"(evaluator features) to this power; 0: uniformly (presets: {config_lib.preset_values('coverage_focus')}).",
    lower_bound=0,
)
_COVERAGE_REFRESH = flags.DEFINE_integer(
    "coverage-refresh",
    None,
    "Every this many steps (a multiple of --checkpoint-every) a run redraws its real images toward those its own "
    "generator covers worst, to the power --coverage-focus, so one run gets some of a second run's variety; 0: never (default 0).",
    lower_bound=0,
)
_NEGATIVE_WEIGHT = flags.DEFINE_float(
    "negative-weight",
    None,
    "Weight in the discriminator's loss of real images of the other nine digits, judged as not this digit "
    "(Rumi-GAN's negatives); 0: none (default 0).",
    lower_bound=0,
)
_NEGATIVE_FOCUS = flags.DEFINE_float(
    "negative-focus",
    None,
    "Weigh each negative by the discriminator's probability that it is real to this power (a focal loss), so the "
    "other digits' images it already tells apart fade; 0: all alike (default 0). Goes with --negative-weight.",
    lower_bound=0,
)
_NEGATIVE_WARMUP = flags.DEFINE_integer(
    "negative-warmup",
    None,
    "Steps over which the negatives' weight rises linearly from 0 to --negative-weight, so the generator first "
    "learns its digit before the discriminator learns where the digit ends; 0: full weight from the first step "
    "(default 0). Goes with --negative-weight.",
    lower_bound=0,
)
_LABEL_SMOOTHING = flags.DEFINE_float(
    "label-smoothing",
    None,
    "One-sided label smoothing: the discriminator's target for real images is 1 minus this, in [0, 1) "
    "(default 0; family mlp: 0.1).",
)
_EMA_MOMENTUM = flags.DEFINE_float(
    "ema-momentum", None, "Momentum of the generator weight average that is sampled and saved, in [0, 1); 0: none (default: 0).",
)
_SNAPSHOTS = flags.DEFINE_integer(
    "snapshots", None, f"Also keep the generators of this many last checkpoints, for --snapshot-mixture (presets: {config_lib.preset_values('snapshots')}).",
    lower_bound=0,
)
_RUNS_PER_DIGIT = flags.DEFINE_integer(
    "runs-per-digit",
    None,
    "Independent GAN runs per digit, each with its own seed (run r in digit-d/run-r/); --snapshot-mixture draws from "
    f"all of them, as generators.json lists them (presets: {config_lib.preset_values('runs_per_digit')}).",
    lower_bound=1,
)
_SAMPLE_EVERY = flags.DEFINE_integer(
    "sample-every", None, f"Steps between sample grids (presets: {config_lib.preset_values('sample_every')}).", lower_bound=1
)
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint-every", None, "Steps between checkpoints and held-out checks (default: 500).", lower_bound=1
)

_EVAL_EVERY = flags.DEFINE_integer(
    "eval-every", None, "Steps between generator quality checks that keep the best one; 0: keep the last (default: 500).",
    lower_bound=0,
)
_WORKERS = flags.DEFINE_integer(
    "workers", None, "Digits trained at once, each in its own process, together using every core (default: one per core, as many "
    "as the available memory holds at 1.2 GiB each, within a container's limits; one where a GPU trains; 1: one after another).",
    lower_bound=1,
)
_ENGINE = flags.DEFINE_enum(
    "engine",
    "local",
    list(config_lib.ENGINES),
    "Where --train-digits runs: local, worker processes on this machine (--workers); ray, one Ray task per "
    "(digit, run) on a cluster whose nodes share the output folder (README: On a cluster).",
)
_ADDRESS = flags.DEFINE_string(
    "address",
    None,
    "With --engine ray: the cluster's head, HOST:PORT, or auto (the cluster this machine is part of). "
    "Without it, a Ray instance of this machine's own starts and stops with the command.",
)
_STOP_ON_DECLINE = flags.DEFINE_boolean("stop-on-decline", False, "Stop a digit once its quality falls 3 checks in a row.")
_DIGITS = flags.DEFINE_list("digits", None, "Digits --evaluate measures (default: every trained one).")
_EVAL_SAMPLES = flags.DEFINE_integer(
    "eval-samples", 8000, "Generated images per digit that --evaluate measures (k-NN metrics use 2000).", lower_bound=10
)
_COMPARE_WITH = flags.DEFINE_list(
    "compare-with",
    [],
    "Other output folders, each with its own --evaluate report, whose rows --evaluate shows beside this one's "
    "(e.g. another model family: --compare-with output-cgan).",
)

_PER_DIGIT = flags.DEFINE_integer(
    "per-digit", 6000, "Images per digit that --export-mnist draws.", lower_bound=1, upper_bound=config_lib.MAX_PER_DIGIT
)
_EXPORT_FORMAT = flags.DEFINE_enum(
    "export-format", "idx", list(config_lib.EXPORT_FORMATS), "--export-mnist file format: MNIST's IDX files, gzipped, or .npz."
)
_EXPORT_SOURCE = flags.DEFINE_enum(
    "export-source",
    "classifier",
    list(config_lib.EXPORT_SOURCES),
    "What --export-mnist draws from: classifier, exactly what the synthetic classifier draws (its generators, "
    "snapshot mixture and noise scale); generator, each digit's generator.keras at noise N(0, 1).",
)

_NOISE_SCALE = flags.DEFINE_float(
    "noise-scale", None, f"Standard deviation of the generators' input noise in the classifier's stream (presets: {config_lib.preset_values('noise_scale', 'classifier')}).",
    lower_bound=0.01,
)
_DIGIT_NOISE_SCALES = flags.DEFINE_string(
    "digit-noise-scales", None, "Digits streamed at their own noise scale in place of --noise-scale: digit=scale pairs, "
    "e.g. 5=1.0,9=0.9; '' for none (default: none).",
)
_SNAPSHOT_MIXTURE = flags.DEFINE_boolean(
    "snapshot-mixture", None, f"Draw each digit from its kept snapshots (--snapshots) instead of generator.keras (presets: {config_lib.preset_values('snapshot_mixture', 'classifier')})."
)
_REJECTION_CANDIDATES = flags.DEFINE_integer(
    "rejection-candidates",
    None,
    "Discriminator rejection sampling in the classifier's stream: each image is chosen from this many by its GAN run's own "
    "discriminator (a packed one scores each image packed with fixed generated partners); 1: none (presets: "
    f"{config_lib.preset_values('rejection_candidates', 'classifier')}).",
    lower_bound=1,
)
_DATA = flags.DEFINE_enum(
    "data", "synthetic", list(config_lib.DATA_SOURCES),
    "Classifier training data: generated digits, real ones, or batches of both (--synthetic-share of each generated).",
)  # fmt: skip
_COMPARE = flags.DEFINE_boolean(
    "compare", False, f"Train the classifier on each data source ({', '.join(config_lib.DATA_SOURCES)}); print a table."
)
_SYNTHETIC_SHARE = flags.DEFINE_float(
    "synthetic-share", None, "Share of each real+synthetic batch that is generated, in (0, 1) (default: 0.5).",
)
_REAL_PER_DIGIT = flags.DEFINE_integer(
    "real-per-digit",
    None,
    "Scarce real data: the GANs (--train-digits), the evaluator that steers them and the classifiers (--train-mnist) learn "
    "from the first N training images of each digit only; validation and test stay whole (default: 0, all 55,000).",
    lower_bound=0,
)
_CLASSIFIER_STEPS = flags.DEFINE_integer(
    "classifier-steps", None, f"Classifier training steps (presets: {config_lib.preset_values('steps', 'classifier')}).", lower_bound=1
)
_CLASSIFIER_BATCH_SIZE = flags.DEFINE_integer(
    "classifier-batch-size", None, "Classifier batch size (default: 50).", lower_bound=1
)


def _fail(message):
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    sys.exit(2)


def _parse_flags(argv):
    """absl's parser, but a bad flag is one line and exit status 2, and help asked for is a success."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _fail(" ".join(str(e).split()))
    except SystemExit as e:
        # absl's help flags (--help, --helpfull, ...) print the help, then exit with status 1.
        sys.exit(0 if e.code == 1 else e.code)


def _action():
    chosen = [
        name
        for name, given in (
            ("train-digits", _TRAIN_DIGITS.present),
            ("train-mnist", _TRAIN_MNIST.value),
            ("evaluate", _EVALUATE.value),
            ("fetch-mnist", _FETCH_MNIST.value),
            ("export-mnist", _EXPORT_MNIST.present),
        )
        if given
    ]
    if len(chosen) != 1:
        what = "no action" if not chosen else "two actions at once (" + ", ".join("--" + c for c in chosen) + ")"
        raise UserError(f"{what}: give exactly one of --train-digits, --train-mnist, --evaluate, --fetch-mnist, --export-mnist")
    return chosen[0]


def make_config(argv):
    """Validates the parsed flags and returns the one `Config` of this run."""
    if len(argv) > 1:
        raise UserError(f"unexpected argument {argv[1]!r}; flags start with --")
    action = _action()
    if _COMPARE.value and action != "train-mnist":
        raise UserError("--compare goes with --train-mnist")
    if _DIGITS.present and action != "evaluate":
        raise UserError("--digits goes with --evaluate (to train digits, use --train-digits)")
    for holder in (_PER_DIGIT, _EXPORT_FORMAT, _EXPORT_SOURCE):
        if holder.present and action != "export-mnist":
            raise UserError(f"--{holder.name} goes with --export-mnist")
    if action == "export-mnist" and not (_EXPORT_MNIST.value or "").strip():
        raise UserError("--export-mnist: give the folder to write into, e.g. --export-mnist synthetic")
    if action == "train-digits":
        digits = config_lib.parse_digits(_TRAIN_DIGITS.value or [], "--train-digits")
    elif action == "evaluate" and _DIGITS.present:
        digits = config_lib.parse_digits(_DIGITS.value or [], "--digits")
    else:
        digits = ()
    if _D_LEARNING_RATE.value is not None and not 0 < _D_LEARNING_RATE.value < 1:
        raise UserError(f"--d-learning-rate: {_D_LEARNING_RATE.value} is outside (0, 1)")
    for holder in (_GENERATOR_WIDTH, _DISCRIMINATOR_WIDTH):
        if holder.value is not None and not 0 < holder.value <= 16:
            raise UserError(f"--{holder.name}: {holder.value} is outside (0, 16]")
    if _LABEL_SMOOTHING.value is not None and not 0 <= _LABEL_SMOOTHING.value < 1:
        raise UserError(f"--label-smoothing: {_LABEL_SMOOTHING.value} is outside [0, 1)")
    if _FAMILY.present and action != "train-digits":
        raise UserError("--family goes with --train-digits; the other commands use what generators.json lists")
    if _NEGATIVE_FOCUS.value and not _NEGATIVE_WEIGHT.value:
        raise UserError("--negative-focus weighs the negatives of --negative-weight: give --negative-weight above 0 too")
    if _NEGATIVE_WARMUP.value and not _NEGATIVE_WEIGHT.value:
        raise UserError("--negative-warmup ramps up the negatives of --negative-weight: give --negative-weight above 0 too")
    if _LR_DECAY.value is not None and not 0 <= _LR_DECAY.value < 1:
        raise UserError(f"--lr-decay: {_LR_DECAY.value} is outside [0, 1)")
    if _EMA_MOMENTUM.value is not None and not 0 <= _EMA_MOMENTUM.value < 1:
        raise UserError(f"--ema-momentum: {_EMA_MOMENTUM.value} is outside [0, 1)")
    if _COMPARE_WITH.present and action != "evaluate":
        raise UserError("--compare-with goes with --evaluate")
    if os.path.realpath(_OUTPUT_DIR.value) in map(os.path.realpath, _COMPARE_WITH.value):
        raise UserError("--compare-with: the output folder itself is the report's first row; name other folders")
    if _ENGINE.present and action != "train-digits":
        raise UserError("--engine goes with --train-digits")
    if _ADDRESS.present and _ENGINE.value != "ray":
        raise UserError("--address names a Ray cluster: it goes with --engine ray")
    if _ADDRESS.value and _ADDRESS.value != "auto" and not re.fullmatch(r"[^\s:]+:\d{1,5}", _ADDRESS.value):
        raise UserError(f"--address: {_ADDRESS.value!r} is neither HOST:PORT nor auto")
    if _WORKERS.present and _ENGINE.value == "ray":
        raise UserError("--workers is the local engine's; with --engine ray every CPU of the cluster takes a run")
    if _WORKERS.present and action != "train-digits":
        raise UserError("--workers goes with --train-digits")
    if _RUNS_PER_DIGIT.present and action != "train-digits":
        raise UserError(
            "--runs-per-digit goes with --train-digits; the other commands use every run that training listed in generators.json"
        )
    if _REAL_PER_DIGIT.present and action not in ("train-digits", "train-mnist"):
        raise UserError("--real-per-digit goes with --train-digits or --train-mnist, which learn from real images")
    if _SYNTHETIC_SHARE.present and action != "train-mnist":
        raise UserError("--synthetic-share goes with --train-mnist")
    if _SYNTHETIC_SHARE.value is not None and not 0 < _SYNTHETIC_SHARE.value < 1:
        raise UserError(f"--synthetic-share: {_SYNTHETIC_SHARE.value} is outside (0, 1)")
    if _PRECISION.present and action not in ("train-digits", "train-mnist"):
        raise UserError("--precision goes with --train-digits or --train-mnist, which train networks")
    chosen_precision = None if _PRECISION.value is None else precision_lib.flag_to_policy(_PRECISION.value)
    gan_preset, classifier_preset = config_lib.PRESETS[_PRESET.value]
    config = config_lib.Config(
        action=action,
        digits=digits,
        data_sources=config_lib.DATA_SOURCES if _COMPARE.value else (_DATA.value,),
        mnist_dir=_MNIST_DIR.value,
        output_dir=_OUTPUT_DIR.value,
        seed=_SEED.value,
        restart=_RESTART.value,
        eval_samples=_EVAL_SAMPLES.value,
        compare_with=tuple(_COMPARE_WITH.value),
        export=config_lib.ExportConfig(
            folder=_EXPORT_MNIST.value or "",
            per_digit=_PER_DIGIT.value,
            file_format=_EXPORT_FORMAT.value,
            source=_EXPORT_SOURCE.value,
        ),
        workers=_WORKERS.value or config_lib.default_workers(),
        command=shlex.join(["./main.py", *sys.argv[1:]]),
        engine=_ENGINE.value,
        address=_ADDRESS.value or "",
        preset=_PRESET.value,
        gan=config_lib.with_overrides(
            config_lib.family_config(gan_preset, _PRESET.value, _FAMILY.value),
            steps=_STEPS.value,
            batch_size=_BATCH_SIZE.value,
            precision=chosen_precision,
            d_learning_rate=_D_LEARNING_RATE.value,
            loss=_LOSS.value,
            augment=None if _AUGMENT.value is None else config_lib.parse_augment(_AUGMENT.value),
            r1_gamma=_R1_GAMMA.value,
            minibatch_std_group=_MINIBATCH_STD_GROUP.value,
            mode_seeking_weight=_MODE_SEEKING_WEIGHT.value,
            spectral_norm=_SPECTRAL_NORM.value,
            generator_width=_GENERATOR_WIDTH.value,
            discriminator_width=_DISCRIMINATOR_WIDTH.value,
            packing=_PACKING.value,
            lr_decay_fraction=_LR_DECAY.value,
            coverage_focus=_COVERAGE_FOCUS.value,
            coverage_refresh=_COVERAGE_REFRESH.value,
            label_smoothing=_LABEL_SMOOTHING.value,
            negative_weight=_NEGATIVE_WEIGHT.value,
            negative_focus=_NEGATIVE_FOCUS.value,
            negative_warmup=_NEGATIVE_WARMUP.value,
            ema_momentum=_EMA_MOMENTUM.value,
            sample_every=_SAMPLE_EVERY.value,
            checkpoint_every=_CHECKPOINT_EVERY.value,
            eval_every=_EVAL_EVERY.value,
            stop_on_decline=_STOP_ON_DECLINE.value or None,
            snapshots=_SNAPSHOTS.value,
            runs_per_digit=_RUNS_PER_DIGIT.value,
            real_per_digit=_REAL_PER_DIGIT.value,
        ),
        classifier=config_lib.with_overrides(
            classifier_preset,
            steps=_CLASSIFIER_STEPS.value,
            batch_size=_CLASSIFIER_BATCH_SIZE.value,
            precision=chosen_precision,
            noise_scale=_NOISE_SCALE.value,
            digit_noise_scales=None if _DIGIT_NOISE_SCALES.value is None else config_lib.parse_digit_noise_scales(_DIGIT_NOISE_SCALES.value),
            snapshot_mixture=_SNAPSHOT_MIXTURE.value,
            rejection_candidates=_REJECTION_CANDIDATES.value,
            real_per_digit=_REAL_PER_DIGIT.value,
            synthetic_share=_SYNTHETIC_SHARE.value,
        ),
    )
    config_lib.check_family(config.gan)
    refresh, focus = config.gan.coverage_refresh, config.gan.coverage_focus
    if refresh and focus <= 0:
        raise UserError("--coverage-refresh draws by the power --coverage-focus: give --coverage-focus above 0 too")
    if refresh % config.gan.checkpoint_every:
        raise UserError(
            f"--coverage-refresh {refresh}: give a multiple of --checkpoint-every ({config.gan.checkpoint_every}), so a "
            "resumed run redraws at the steps a straight one does"
        )
    generated = config.classifier.generated_per_batch("real+synthetic")
    if _SYNTHETIC_SHARE.present and "real+synthetic" not in config.data_sources:
        raise UserError("--synthetic-share sets the real+synthetic batches: give --data real+synthetic or --compare")
    # Before the share: no share of a batch of one leaves a generated and a real image.
    if "real+synthetic" in config.data_sources and config.classifier.batch_size < 2:
        asked = "--compare trains on" if _COMPARE.value else "--data"
        raise UserError(f"{asked} real+synthetic: each batch mixes generated and real images, so give --classifier-batch-size 2 or more")
    if "real+synthetic" in config.data_sources and not 0 < generated < config.classifier.batch_size:
        raise UserError(
            f"--synthetic-share {config.classifier.synthetic_share} of a batch of {config.classifier.batch_size} is "
            f"{generated} generated images: give a share that leaves at least one generated and one real image"
        )
    if config.gan.mode_seeking_weight > 0 and config.gan.batch_size < 2:
        raise UserError("--mode-seeking-weight pairs images within a batch: give --batch-size 2 or more")
    return config


def main(argv):
    try:
        config = make_config(argv)
        from mnistgan import commands  # Deferred: flags are refused before absl logging and the actions load.

        return commands.execute(config)
    except UserError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


def launch():
    """app.run, but a reader that stops early (`./main.py --help | head`) is no error of ours."""
    try:
        try:
            app.run(main, flags_parser=_parse_flags)
        finally:
            sys.stdout.flush()  # A closed pipe fails here, not at exit where it cannot be caught.
    except BrokenPipeError:
        # Python would flush stdout again at exit and fail again; give it somewhere to write.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # What a shell reports for a process ended by SIGPIPE.


if __name__ == "__main__":
    launch()
