import pytest

from mnistgan import config as config_lib
from mnistgan.errors import UserError


def test_original_preset_is_the_seed_projects_configuration():
    gan, classifier = config_lib.PRESETS["original"]
    assert (gan.steps, gan.batch_size, gan.latent_dim, gan.learning_rate, gan.beta1) == (20000, 32, 32, 2e-4, 0.5)
    assert gan.precision == "float32" and not gan.mixed_batches and gan.leaky_slope == 0.01 and gan.ema_momentum == 0
    assert gan.d_learning_rate is None  # Both networks at 2e-4.
    assert (classifier.steps, classifier.batch_size, classifier.learning_rate) == (20000, 50, 1e-4)
    assert classifier.precision == "float32" and classifier.feature_size == 1024


def test_fast_preset_slows_only_the_discriminator_and_a_flag_overrides_it():
    fast, _ = config_lib.PRESETS["fast"]
    assert (fast.learning_rate, fast.d_learning_rate, fast.steps) == (2e-4, 5e-5, 2000)
    assert config_lib.PRESETS["default"][0].d_learning_rate is None
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
                 "minibatch_std_group", "mixed_batches", "ema_momentum", "precision"):  # fmt: skip
        assert name in keys
    for name in ("steps", "sample_every", "checkpoint_every", "eval_every", "stop_on_decline"):
        assert name not in keys  # Changing these does not change what a checkpoint means.
    assert config_lib.values_before_recorded(config_lib.GanConfig) == {
        "d_learning_rate": None, "loss": "non_saturating", "augment": "", "r1_gamma": 0.0, "minibatch_std_group": 0,
    }  # fmt: skip
    assert config_lib.resume_keys(config_lib.ClassifierConfig) == ("batch_size", "learning_rate", "precision", "feature_size")


def test_default_workers_is_one_per_core_at_most_two():
    assert [config_lib.default_workers(cores) for cores in (1, 2, 8)] == [1, 2, 2]
