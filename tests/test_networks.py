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


def test_minibatch_std_adds_one_channel_of_each_groups_spread():
    x = np.zeros((6, 7, 7, 2), np.float32)
    x[0:4, ..., 0] = np.arange(4)[:, None, None]  # Group 0 (images 0-3): spread in channel 0 only.
    x[4:6, ..., 1] = [[[0.0]], [[2.0]]]  # Group 1 (images 4-5, the short last group): spread 1 in channel 1.
    y = networks.MinibatchStdDev(group_size=4)(x).numpy()
    assert y.shape == (6, 7, 7, 3)
    np.testing.assert_array_equal(y[..., :2], x)
    np.testing.assert_allclose(y[:4, ..., 2], np.std(np.arange(4)) / 2, rtol=1e-3)  # Mean over 2 channels.
    np.testing.assert_allclose(y[4:, ..., 2], 1.0 / 2, rtol=1e-3)


def test_discriminator_with_minibatch_std_has_one_more_input_channel_to_its_dense_layer():
    discriminator = networks.build_discriminator(minibatch_std_group=4)
    assert discriminator(np.zeros((8, 28, 28, 1), np.float32), training=True).shape == (8, 1)
    assert discriminator.count_params() == 3_268_769 + 7 * 7 * 1024  # 7 x 7 x 65 into the dense layer.


def test_fused_batch_norm_matches_keras_batch_norm():
    import keras

    x = np.random.default_rng(0).normal(1.0, 2.0, (16, 7, 7, 8)).astype(np.float32)
    for shape in ((16, 7, 7, 8), (16, 8)):
        fused, plain = networks.FusedBatchNormalization(), keras.layers.BatchNormalization()
        inputs = x.reshape(shape) if len(shape) == 4 else x[:, 0, 0, :]
        np.testing.assert_allclose(fused(inputs, training=True), plain(inputs, training=True), atol=1e-4)
        np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(fused(inputs, training=False), plain(inputs, training=False), atol=1e-3)


def test_spectrally_normalised_discriminator_has_no_batch_norm_and_unit_spectral_norms():
    import keras

    discriminator = networks.build_discriminator(spectral_norm=True)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in discriminator.layers)
    # The same convolutions and dense layers, with biases in place of the batch norm's scale and shift,
    # and each wrapper's power-iteration vector u (one value per output unit).
    trainable = (25 * 32 + 32) + (25 * 32 * 64 + 64) + (3136 * 1024 + 1024) + 1025
    assert discriminator.count_params() == trainable + (32 + 64 + 1024 + 1)
    images = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    for _ in range(30):  # Each training call is one power iteration; it converges to the top singular value.
        logits = discriminator(images, training=True)
    assert logits.shape == (8, 1) and logits.dtype == "float32"
    wrapped = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(wrapped) == 4
    for layer in wrapped:
        kernel = layer.layer.kernel.numpy()
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 0.05, layer.name


def test_width_multipliers_scale_every_hidden_layer():
    generator = networks.build_generator(latent_dim=32, width=2.0)
    # dense 32->2048, BN, dense 2048->7*7*128, BN, tconv 5x5 128->64, BN, tconv 5x5 64->1 (+bias)
    assert generator.count_params() == 32 * 2048 + 4 * 2048 + 2048 * 6272 + 4 * 6272 + 25 * 128 * 64 + 4 * 64 + 25 * 64 + 1
    tutorial = networks.build_generator(latent_dim=32, width=4.0)  # TensorFlow's DCGAN tutorial's channels.
    assert tutorial.get_layer(index=7).output.shape[1:] == (7, 7, 256)
    assert [l.filters for l in tutorial.layers if hasattr(l, "filters")] == [128, 1]
    assert networks.build_generator(width=4.0)(np.zeros((2, 32), np.float32)).shape == (2, 28, 28, 1)
    discriminator = networks.build_discriminator(width=0.5)
    # conv 5x5 1->16, BN, conv 5x5 16->32, BN, dense 1568->512, BN, dense 512->1 (+bias)
    assert discriminator.count_params() == 25 * 16 + 4 * 16 + 25 * 16 * 32 + 4 * 32 + 1568 * 512 + 4 * 512 + 513
    assert networks.widened(1024, 1.0) == 1024 and networks.widened(32, 0.01) == 1


def test_pack_stacks_consecutive_images_as_channels_and_never_mixes_two_halves():
    images = np.arange(6 * 28 * 28, dtype=np.float32).reshape(6, 28, 28, 1)
    packs = networks.pack(images, 2).numpy()
    assert packs.shape == (3, 28, 28, 2)
    for index in range(3):
        for channel in range(2):
            np.testing.assert_array_equal(packs[index, ..., channel], images[2 * index + channel, ..., 0])
    assert networks.pack(images, 1) is images


def test_a_packed_discriminator_judges_packs():
    discriminator = networks.build_discriminator(packing=3)
    assert discriminator(np.zeros((4, 28, 28, 3), np.float32), training=True).shape == (4, 1)
    # Only the first convolution sees the extra channels: 25 * 32 weights per channel.
    assert discriminator.count_params() == 3_268_769 + 2 * 25 * 32


def test_the_mlp_family_has_the_notebooks_networks():
    generator = networks.build_mlp_generator(latent_dim=100)
    images = generator(np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32) * 3).numpy()
    assert images.shape == (5, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0
    assert generator.count_params() == (100 * 128 + 128) + (128 * 784 + 784) == 114_064  # Udacity's gan_mnist.
    discriminator = networks.build_mlp_discriminator()
    assert discriminator(np.zeros((3, 28, 28, 1), np.float32)).shape == (3, 1)
    assert discriminator.count_params() == (784 * 128 + 128) + (128 + 1) == 100_609
