"""main.py as a user runs it: every bad input is one line and exit status 2."""

import subprocess
import sys

import pytest

from tests.conftest import MAIN, ROOT, run_main


def assert_refused(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("main.py: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        ([], ["no action", "--train-digits", "--train-mnist"]),
        (["--train-digits", "1,12"], ["12 is outside 0-9"]),
        (["--train-digits", "-1"], ["-1 is outside 0-9"]),
        (["--train-digits", "1,x"], ["'x' is not an integer"]),
        (["--train-digits", "2.5"], ["'2.5' is not an integer"]),
        (["--train-digits", "1,,2"], ["empty item"]),
        (["--train-digits="], ["at least one digit"]),
        (["--train-digits", "3,3"], ["digit 3 is given twice"]),
        (["--train-digits", "1", "--train-mnist"], ["two actions at once"]),
        (["--train-digits", "1", "--fetch-mnist"], ["two actions at once"]),
        (["--bogus"], ["Unknown command line flag 'bogus'"]),
        (["--train-digits", "1", "--steps", "0"], ["--steps"]),
        (["--train-digits", "1", "--steps", "ten"], ["--steps"]),
        (["--train-mnist", "--data", "imagined"], ["--data"]),
        (["--train-digits", "1", "--d-learning-rate", "0"], ["--d-learning-rate: 0.0 is outside (0, 1)"]),
        (["--train-digits", "1", "--d-learning-rate", "fast"], ["--d-learning-rate"]),
        (["--train-digits", "1", "--ema-momentum", "1"], ["--ema-momentum: 1.0 is outside [0, 1)"]),
        (["--train-digits", "1", "--mode-seeking-weight", "1", "--batch-size", "1"], ["give --batch-size 2 or more"]),
        (["--train-digits", "1", "--mode-seeking-weight", "-1"], ["--mode-seeking-weight"]),
        (["--train-digits", "1", "--runs-per-digit", "0"], ["--runs-per-digit=0: 0 is not a positive integer"]),
        (["--train-digits", "1", "--compare"], ["--compare goes with --train-mnist"]),
        (["--train-mnist", "--runs-per-digit", "2"], ["--runs-per-digit goes with --train-digits", "generators.json"]),
        (["--train-digits", "1", "--export-source", "generator"], ["--export-source goes with --export-mnist"]),
        (["stray", "--fetch-mnist"], ["unexpected argument 'stray'"]),
        (["--train-digits", "1", "--generator-width", "0"], ["--generator-width: 0.0 is outside (0, 16]"]),
        (["--train-digits", "1", "--lr-decay", "1"], ["--lr-decay: 1.0 is outside [0, 1)"]),
        (["--train-digits", "1", "--packing", "0"], ["--packing"]),
        (["--train-digits", "1", "--label-smoothing", "1"], ["--label-smoothing: 1.0 is outside [0, 1)"]),
        (["--train-digits", "1", "--negative-weight", "-0.1"], ["--negative-weight"]),
        (["--train-digits", "1", "--preset", "fast", "--coverage-refresh", "1000"], ["give --coverage-focus above 0 too"]),
        (["--train-digits", "1", "--coverage-focus", "2", "--coverage-refresh", "700"], ["--coverage-refresh 700: give a multiple of --checkpoint-every (500)"]),
        (["--train-digits", "1", "--negative-focus", "2"], ["--negative-focus", "give --negative-weight above 0 too"]),
        (["--train-digits", "1", "--negative-warmup", "1000"], ["--negative-warmup", "give --negative-weight above 0 too"]),
        (["--train-digits", "1", "--family", "cdcgan", "--negative-weight", "0.1"], ["--negative-weight", "cdcgan family"]),
        (["--train-digits", "1", "--family", "mlp", "--minibatch-std-group", "4"], ["--minibatch-std-group", "mlp family"]),
        (["--train-digits", "1", "--family", "gan"], ["--family"]),
        (["--train-mnist", "--family", "mlp"], ["--family goes with --train-digits"]),
        (["--train-mnist", "--compare-with", "other"], ["--compare-with goes with --evaluate"]),
        (["--train-mnist", "--digit-noise-scales", "5:1"], ["--digit-noise-scales: '5:1' is not digit=scale (e.g. 5=1.0)"]),
        (["--train-mnist", "--compare", "--synthetic-share", "1"], ["--synthetic-share: 1.0 is outside (0, 1)"]),
        (["--train-mnist", "--data", "real", "--synthetic-share", "0.3"], ["give --data real+synthetic or --compare"]),
        (["--train-mnist", "--data", "real+synthetic", "--synthetic-share", "0.005"], ["is 0 generated images"]),
        # No share of a batch of one mixes both: the refusal says so, not a --synthetic-share nobody gave.
        (["--train-mnist", "--compare", "--classifier-batch-size", "1"], ["--compare trains on real+synthetic", "--classifier-batch-size 2 or more"]),
        (["--train-mnist", "--data", "real+synthetic", "--classifier-batch-size", "1"], ["--data real+synthetic", "--classifier-batch-size 2 or more"]),
        (["--evaluate", "--real-per-digit", "100"], ["--real-per-digit goes with --train-digits or --train-mnist"]),
        (["--evaluate", "--output-dir", "out", "--compare-with", "out/"], ["--compare-with: the output folder itself"]),
    ],
)
def test_bad_flags_are_refused_before_any_work(args, fragments):
    assert_refused(run_main(*args), *fragments)


def test_output_dir_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_main("--train-digits", "1", "--output-dir", str(blocker / "out"))
    assert_refused(result, "not writable", str(blocker / "out"))
    assert blocker.read_text() == "x"


def test_corrupt_mnist_file_is_named(tmp_path):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 10)
    result = run_main("--fetch-mnist", "--mnist-dir", str(tmp_path))
    assert_refused(result, "train-images-idx3-ubyte", "SHA-256 mismatch")


def test_help_explains_each_flag():
    result = run_main("--help")
    for flag in ("--train-digits", "--train-mnist", "--mnist-dir", "--output-dir", "--seed", "--steps", "--compare"):
        assert flag in result.stdout


def test_a_reader_that_stops_early_gets_no_traceback():
    """`./main.py --help | head`: the pipe closes before main.py has written its help."""
    process = subprocess.Popen([sys.executable, MAIN, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert stderr == "" and process.returncode == 141


def test_fetch_mnist_on_the_set_up_copy(real_mnist_dir):
    result = run_main("--fetch-mnist", "--mnist-dir", real_mnist_dir)
    assert result.returncode == 0, result.stderr
    assert "55000 training, 5000 validation, 10000 test" in result.stdout


@pytest.mark.parametrize(
    "flag, field, value",
    [
        ("--ema-momentum=0.999", "ema_momentum", 0.999),
        ("--minibatch-std-group=4", "minibatch_std_group", 4),
        ("--mode-seeking-weight=0.5", "mode_seeking_weight", 0.5),
        ("--runs-per-digit=3", "runs_per_digit", 3),
        ("--spectral-norm", "spectral_norm", True),
        ("--generator-width=2", "generator_width", 2.0),
        ("--discriminator-width=0.5", "discriminator_width", 0.5),
        ("--packing=3", "packing", 3),  # Not the default preset's 2.
        ("--lr-decay=0.33", "lr_decay_fraction", 0.33),
        ("--coverage-focus=2", "coverage_focus", 2.0),
        ("--family=mlp", "family", "mlp"),
        ("--label-smoothing=0.2", "label_smoothing", 0.2),
        ("--negative-weight=0.1", "negative_weight", 0.1),
        ("--coverage-refresh=1000", "coverage_refresh", 1000),
    ],
)
def test_technique_flags_reach_the_gan_config(flag, field, value):
    script = (
        "import sys; import main; "
        f"argv = main._parse_flags(['main.py', '--train-digits', '1', {flag!r}]); "
        f"print(repr(main.make_config(argv).gan.{field}))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr(value)


def test_digit_noise_scales_reach_the_classifier_config_normalised():
    script = (
        "import main; argv = main._parse_flags(['main.py', '--train-mnist', '--digit-noise-scales=9=0.9,5=1']); "
        "print(repr(main.make_config(argv).classifier.digit_noise_scales))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr("5=1.0,9=0.9")
