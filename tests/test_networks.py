import numpy as np

from mnistgan import networks


def test_generator_shapes_range_and_parameters():
    generator = networks.build_generator(latent_dim=32)
    z = np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32)
    images = generator(z, training=False).numpy()
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    # dense 32->1024, BN, dense 1024->7*7*64, BN, tconv 5x5 64->32, BN, tconv 5x5 32->1 (+bias)
    expected = 32 * 1024 + 4 * 1024 + 1024 * 3136 + 4 * 3136 + 25 * 64 * 32 + 4 * 32 + 25 * 32 + 1
    assert generator.count_params() == expected == 3_312_801


def test_discriminator_shapes_and_parameters():
    discriminator = networks.build_discriminator()
    logits = discriminator(np.zeros((3, 28, 28, 1), np.float32), training=False).numpy()
    assert logits.shape == (3, 1) and logits.dtype == np.float32
    # conv 5x5 1->32, BN, conv 5x5 32->64, BN, dense 3136->1024, BN, dense 1024->1 (+bias)
    expected = 25 * 32 + 4 * 32 + 25 * 32 * 64 + 4 * 64 + 3136 * 1024 + 4 * 1024 + 1025
    assert discriminator.count_params() == expected == 3_268_769


def test_classifier_is_deep_mnist():
    classifier = networks.build_classifier()
    logits = classifier(np.zeros((2, 28, 28, 1), np.float32)).numpy()
    assert logits.shape == (2, 10)
    assert classifier.count_params() == 3_274_634  # The tutorial network's size.
    assert classifier.get_layer("features").units == 1024


def test_classifier_feature_width_is_configurable():
    assert networks.build_classifier(feature_size=128).get_layer("features").units == 128
