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


def test_parse_digits_sorts_and_names_the_flag():
    assert config_lib.parse_digits([" 9", "0", "5 "]) == (0, 5, 9)
    with pytest.raises(UserError, match="^--digits: 10 is outside 0-9$"):
        config_lib.parse_digits(["10"], "--digits")


def test_overrides_skip_unset_flags():
    base = config_lib.GanConfig()
    changed = config_lib.with_overrides(base, steps=7, batch_size=None)
    assert changed.steps == 7 and changed.batch_size == base.batch_size
