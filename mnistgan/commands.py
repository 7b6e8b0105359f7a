"""What each action of main.py does, given the run's `Config`."""

import logging as std_logging

from mnistgan import data, outputs


def fetch_mnist(config):
    mnist = data.load(config.mnist_dir)
    print(
        f"MNIST verified in {config.mnist_dir}: {len(mnist.train_images)} training, "
        f"{len(mnist.validation_images)} validation, {len(mnist.test_images)} test images"
    )
    return 0


def train_digits(config):
    mnist = data.load(config.mnist_dir)
    if config.workers > 1 and len(config.digits) > 1:
        from mnistgan import workers

        return workers.train_digits(config, mnist)
    from mnistgan import gan  # Deferred: imports TensorFlow.

    return gan.train_digits(config, mnist)


def train_mnist(config):
    from mnistgan import classifier  # Deferred: imports TensorFlow.

    return classifier.train_and_report(config, data.load(config.mnist_dir))


def evaluate(config):
    from mnistgan import report  # Deferred: imports TensorFlow.

    return report.evaluate(config, data.load(config.mnist_dir))


ACTIONS = {"fetch-mnist": fetch_mnist, "train-digits": train_digits, "train-mnist": train_mnist, "evaluate": evaluate}


def run(config):
    """Runs `config.action`; returns the process exit status."""
    # TensorFlow logs every checkpoint write at INFO ("Sharding callback ..."), drowning progress lines.
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
    if config.action != "fetch-mnist":
        outputs.check_writable_dir(config.output_dir)
    return ACTIONS[config.action](config)
