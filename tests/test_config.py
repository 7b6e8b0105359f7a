import dataclasses
import re

import pytest

from mnistgan import config as config_lib
from mnistgan.errors import UserError

# Every value of every preset. A new setting fails these until it is pinned here.
# The dataclasses' own defaults (the recipe before any technique), which the presets start from.
DEFAULT_GAN = {
    "latent_dim": 32, "steps": 3000, "batch_size": 32, "learning_rate": 2e-4, "d_learning_rate": None, "beta1": 0.5,
    "leaky_slope": 0.01, "precision": "auto", "mixed_batches": True, "generator_step_dropout": True,
    "ema_momentum": 0.0, "recalibrate_batch_norm": True, "batch_norm_momentum": 0.99, "loss": "non_saturating",
    "augment": "", "r1_gamma": 0.0, "minibatch_std_group": 0, "mode_seeking_weight": 0.0, "spectral_norm": False,
    "generator_width": 1.0, "discriminator_width": 1.0, "packing": 1, "lr_decay_fraction": 0.0, "coverage_focus": 0.0,
    "coverage_refresh": 0, "family": "dcgan", "label_smoothing": 0.0, "real_per_digit": 0, "negative_weight": 0.0,
    "negative_focus": 0.0, "negative_warmup": 0, "sample_every": 250, "checkpoint_every": 500,
    "heldout_samples": 500, "eval_every": 500, "eval_samples": 500, "decline_patience": 3, "stop_on_decline": False,
    "snapshots": 0, "runs_per_digit": 1,
}  # fmt: skip
DEFAULT_CLASSIFIER = {
    "steps": 20000, "batch_size": 50, "learning_rate": 1e-4, "precision": "auto", "feature_size": 1024,
    "noise_scale": 1.0, "digit_noise_scales": "", "snapshot_mixture": False, "rejection_candidates": 1, "real_per_digit": 0,
    "synthetic_share": 0.5, "eval_every": 1000, "checkpoint_every": 1000,
}  # fmt: skip
PRESETS = {
    "default": (
        {**DEFAULT_GAN, "steps": 4000, "d_learning_rate": 5e-5, "minibatch_std_group": 4, "packing": 2, "snapshots": 4,
         "runs_per_digit": 2, "coverage_focus": 2.0},
        {**DEFAULT_CLASSIFIER, "noise_scale": 1.2, "snapshot_mixture": True},
    ),
    # The seed project (gtoubassi/mnist-gan): 20,000 steps at batch 32, Adam 2e-4 / 0.5 for both networks,
    # float32, real and fake in separate D batches, no D dropout in the generator step, batch-norm decay
    # 0.9, the last generator sampled with its moving statistics; Deep MNIST 20,000 x 50 at 1e-4.
    "original": (
        {
            **DEFAULT_GAN, "steps": 20000, "precision": "float32", "mixed_batches": False,
            "generator_step_dropout": False, "eval_every": 0, "recalibrate_batch_norm": False,
            "batch_norm_momentum": 0.9,
        },
        {**DEFAULT_CLASSIFIER, "precision": "float32"},
    ),  # fmt: skip
    "fast": (
        {**DEFAULT_GAN, "steps": 4000, "d_learning_rate": 5e-5, "minibatch_std_group": 4, "snapshots": 4, "sample_every": 200},
        {**DEFAULT_CLASSIFIER, "steps": 10000, "noise_scale": 1.2, "snapshot_mixture": True},
    ),
    "best": (
        {**DEFAULT_GAN, "steps": 4000, "d_learning_rate": 5e-5, "minibatch_std_group": 4, "snapshots": 4, "runs_per_digit": 4},
        {**DEFAULT_CLASSIFIER, "noise_scale": 1.2, "snapshot_mixture": True},
    ),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_value_of_every_preset_is_pinned(name):
    gan, classifier = config_lib.PRESETS[name]
    assert dataclasses.asdict(gan) == PRESETS[name][0]
    assert dataclasses.asdict(classifier) == PRESETS[name][1]
    assert set(config_lib.PRESETS) == set(PRESETS)


@pytest.mark.parametrize("field, stage, shown", [("minibatch_std_group", 0, str), ("snapshot_mixture", 1, {True: "on", False: "off"}.get)])
def test_flag_help_gives_every_presets_value(field, stage, shown):
    text = config_lib.preset_values(field, ("gan", "classifier")[stage])
    by_preset = {name: value for entry in text.split("; ") for names, value in [entry.rsplit(" ", 1)] for name in names.split(", ")}
    assert by_preset == {name: shown(PRESETS[name][stage][field]) for name in PRESETS}
    assert len(text.split("; ")) == len({PRESETS[name][stage][field] for name in PRESETS})  # Agreeing presets share an entry.


def test_presets_but_original_slow_only_the_discriminator_and_a_flag_overrides_it():
    fast, _ = config_lib.PRESETS["fast"]
    assert (fast.learning_rate, fast.d_learning_rate, fast.steps) == (2e-4, 5e-5, 4000)
    assert config_lib.PRESETS["default"][0].d_learning_rate == 5e-5
    assert config_lib.PRESETS["original"][0].d_learning_rate is None
    assert config_lib.with_overrides(fast, d_learning_rate=None).d_learning_rate == 5e-5
    assert config_lib.with_overrides(fast, d_learning_rate=2e-4).d_learning_rate == 2e-4


def test_parse_digits_sorts_and_names_the_flag():
    assert config_lib.parse_digits([" 9", "0", "5 "]) == (0, 5, 9)
    with pytest.raises(UserError, match="^--digits: 10 is outside 0-9$"):
        config_lib.parse_digits(["10"], "--digits")


def test_overrides_skip_unset_flags():
    base = config_lib.GanConfig()
    changed = config_lib.with_overrides(base, steps=7, batch_size=None)
    assert changed.steps == 7 and changed.batch_size == base.batch_size


def test_resume_keys_are_declared_on_the_settings():
    keys = config_lib.resume_keys(config_lib.GanConfig)
    for name in ("latent_dim", "batch_size", "learning_rate", "d_learning_rate", "loss", "augment", "r1_gamma",
                 "minibatch_std_group", "mode_seeking_weight", "spectral_norm", "mixed_batches", "generator_step_dropout", "ema_momentum", "precision",
                 "generator_width", "discriminator_width", "packing", "lr_decay_fraction", "coverage_focus", "family",
                 "label_smoothing", "real_per_digit", "coverage_refresh", "negative_weight", "negative_focus",
                 "negative_warmup"):  # fmt: skip
        assert name in keys
    # Changing these does not change what a checkpoint means (the last two only change sampling).
    for name in ("steps", "sample_every", "checkpoint_every", "eval_every", "stop_on_decline", "recalibrate_batch_norm",
                 "batch_norm_momentum"):  # fmt: skip
        assert name not in keys
    # Coverage focus changes only the runs after a digit's first.
    assert set(keys) - set(config_lib.resume_keys(config_lib.GanConfig, run=1)) == {"coverage_focus"}
    # Unless a run refreshes its weights by it: then the focus steers run 1 too.
    from mnistgan import jobs

    assert "coverage_focus" not in jobs.resume_keys(1, config_lib.GanConfig(coverage_focus=2.0))
    assert "coverage_focus" in jobs.resume_keys(1, config_lib.GanConfig(coverage_focus=2.0, coverage_refresh=1000))
    assert config_lib.values_before_recorded(config_lib.GanConfig) == {
        "d_learning_rate": None, "generator_step_dropout": True, "loss": "non_saturating", "augment": "",
        "r1_gamma": 0.0, "minibatch_std_group": 0, "mode_seeking_weight": 0.0, "spectral_norm": False,
        "generator_width": 1.0, "discriminator_width": 1.0, "packing": 1, "lr_decay_fraction": 0.0,
        "coverage_focus": 0.0, "coverage_refresh": 0, "family": "dcgan", "label_smoothing": 0.0, "real_per_digit": 0,
        "negative_weight": 0.0, "negative_focus": 0.0, "negative_warmup": 0,
    }  # fmt: skip
    assert config_lib.resume_keys(config_lib.ClassifierConfig) == (
        "batch_size", "learning_rate", "precision", "feature_size", "noise_scale", "digit_noise_scales", "snapshot_mixture",
        "rejection_candidates", "real_per_digit", "synthetic_share",
    )  # fmt: skip


def test_digit_noise_scales_are_checked_normalised_and_fall_back_to_the_noise_scale():
    assert config_lib.parse_digit_noise_scales(" 9=0.9, 5=1") == "5=1.0,9=0.9"
    assert config_lib.parse_digit_noise_scales("") == ""
    cfg = config_lib.ClassifierConfig(noise_scale=1.2, digit_noise_scales="5=1.0,9=0.9")
    assert [cfg.noise_scale_of(d) for d in (4, 5, 9)] == [1.2, 1.0, 0.9]
    # A digit named at the noise scale itself is no change: the setting reads (and resumes) as without it.
    assert config_lib.ClassifierConfig(noise_scale=1.2, digit_noise_scales="5=1.0,8=1.2").digit_noise_scales == "5=1.0"
    assert config_lib.ClassifierConfig(noise_scale=1.2, digit_noise_scales="8=1.2").digit_noise_scales == ""
    for text, message in [
        ("5:1.0", "'5:1.0' is not digit=scale"), ("5=", "'5=' is not digit=scale"), ("10=1.0", "10 is outside 0-9"),
        ("5=1.0,5=0.9", "digit 5 is given twice"), ("5=0", "digit 5's scale 0.0 is below 0.01 or not a number"),
        ("5=nan", "digit 5's scale nan is below 0.01 or not a number"),
    ]:
        with pytest.raises(UserError, match=re.escape(f"--digit-noise-scales: {message}")):
            config_lib.parse_digit_noise_scales(text)


def test_default_workers_are_one_per_core_as_far_as_memory_holds_them():
    gib = 2**30
    assert [config_lib.default_workers(cores, available_bytes=64 * gib) for cores in (1, 2, 8)] == [1, 2, 8]
    assert config_lib.default_workers(8, available_bytes=4 * gib) == 3  # A GAN worker holds about 1.1 GB.
    assert config_lib.default_workers(8, available_bytes=gib // 2) == 1  # Never none.


def test_the_machine_is_read_for_the_default_workers(tmp_path, monkeypatch):
    from mnistgan import environment

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         100000 kB\nMemAvailable:    5000000 kB\n")
    assert environment.available_memory_bytes(str(meminfo)) == 5_000_000 * 1024
    assert environment.available_memory_bytes(str(tmp_path / "none")) is None
    monkeypatch.setattr(environment, "usable_cores", lambda: 16)
    monkeypatch.setattr(environment, "available_memory_bytes", lambda: 5_000_000 * 1024)
    assert config_lib.default_workers() == 4



def test_a_family_brings_its_recipe_and_the_original_preset_its_length():
    default, original = config_lib.PRESETS["default"][0], config_lib.PRESETS["original"][0]
    mlp = config_lib.family_config(default, "default", "mlp")
    assert (mlp.family, mlp.latent_dim, mlp.batch_size, mlp.learning_rate, mlp.beta1, mlp.label_smoothing) == ("mlp", 100, 100, 2e-3, 0.9, 0.1)
    assert (mlp.minibatch_std_group, mlp.d_learning_rate, mlp.steps, mlp.runs_per_digit, mlp.coverage_focus, mlp.packing) == (
        0, None, 4000, 2, 0.0, 1)
    assert config_lib.family_config(original, "original", "mlp").steps == 5500
    assert config_lib.family_config(default, "default", "dcgan") == default
    config_lib.check_family(mlp)
    with pytest.raises(UserError, match="--packing changes the dcgan family's networks"):
        config_lib.check_family(dataclasses.replace(mlp, packing=2))
