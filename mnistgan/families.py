"""Model families, chosen by name (`GanConfig.family`, `--family`) as TF-GAN chooses its gan_type.

A family is the pair of networks a GAN run trains; the training step, the
harness, the files and every consumer of the generators (generators.py) are
the same for all. Each family's recipe, its seed project's settings, is in
config.FAMILY_RECIPES.

| family | networks | per digit |
|---|---|---|
| dcgan | mnist-gan's DCGAN with batch norm (networks.build_generator / build_discriminator) | yes |
| mlp | the GAN notebooks' fully connected GAN, 100 -> 128 -> 784 and 784 -> 128 -> 1 | yes |
| cgan-mlp | cGAN_mnist's conditional GAN: fully connected, noise and image times a label embedding | no: one for all |
| cdcgan | the DCGAN given the label: an embedding beside the noise, a projection discriminator | no: one for all |

A conditional family's networks take [images or noise, int32 labels (n,)].
"""

import dataclasses
from collections.abc import Callable

from mnistgan import networks


@dataclasses.dataclass(frozen=True)
class Family:
    """How one family builds its networks from a `GanConfig` (uncompiled Keras models, images in [0, 1])."""

    name: str
    build_generator: Callable
    build_discriminator: Callable
    conditional: bool = False  # One network for all digits, fed the label.


def _dcgan_generator(cfg, name="generator"):
    return networks.build_generator(cfg.latent_dim, cfg.leaky_slope, name, cfg.batch_norm_momentum, cfg.generator_width)


def _dcgan_discriminator(cfg):
    return networks.build_discriminator(
        cfg.leaky_slope,
        minibatch_std_group=cfg.minibatch_std_group,
        spectral_norm=cfg.spectral_norm,
        width=cfg.discriminator_width,
        packing=cfg.packing,
    )


def _mlp_generator(cfg, name="generator"):
    return networks.build_mlp_generator(cfg.latent_dim, leaky_slope=cfg.leaky_slope, name=name)


def _mlp_discriminator(cfg):
    return networks.build_mlp_discriminator(leaky_slope=cfg.leaky_slope)


def _cgan_generator(cfg, name="generator"):
    return networks.build_cgan_generator(cfg.latent_dim, name=name)


def _cgan_discriminator(cfg):
    return networks.build_cgan_discriminator()


def _cdcgan_generator(cfg, name="generator"):
    return networks.build_conditional_generator(cfg.latent_dim, cfg.leaky_slope, name, cfg.batch_norm_momentum, cfg.generator_width)


def _cdcgan_discriminator(cfg):
    return networks.build_projection_discriminator(
        cfg.leaky_slope, minibatch_std_group=cfg.minibatch_std_group, width=cfg.discriminator_width
    )


FAMILIES = {
    "dcgan": Family("dcgan", _dcgan_generator, _dcgan_discriminator),
    "mlp": Family("mlp", _mlp_generator, _mlp_discriminator),
    "cgan-mlp": Family("cgan-mlp", _cgan_generator, _cgan_discriminator, conditional=True),
    "cdcgan": Family("cdcgan", _cdcgan_generator, _cdcgan_discriminator, conditional=True),
}


def is_conditional(cfg):
    """Whether `cfg.family` trains one network for all digits, fed the label."""
    return FAMILIES[cfg.family].conditional


def build_networks(cfg):
    """A new (generator, discriminator) of `cfg.family`, in `cfg.precision`, with freshly drawn weights."""
    family = FAMILIES[cfg.family]
    with networks.dtype_policy(cfg.precision):
        return family.build_generator(cfg), family.build_discriminator(cfg)


def build_generator(cfg, name):
    """Another generator of `cfg.family` (the weight average's), in `cfg.precision`."""
    with networks.dtype_policy(cfg.precision):
        return FAMILIES[cfg.family].build_generator(cfg, name=name)


def build_discriminator(cfg):
    """A discriminator of `cfg.family`, in `cfg.precision` (to restore a run's from its checkpoint)."""
    with networks.dtype_policy(cfg.precision):
        return FAMILIES[cfg.family].build_discriminator(cfg)
