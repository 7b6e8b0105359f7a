"""What each action of main.py does, given the run's `Config`."""

from absl import logging

from mnistgan import data, environment, outputs


def fetch_mnist(config):
    mnist = data.load(config.mnist_dir)
    print(
        f"MNIST verified in {config.mnist_dir}: {len(mnist.train_images)} training, "
        f"{len(mnist.validation_images)} validation, {len(mnist.test_images)} test images"
    )
    return 0


def train_digits(config):
    mnist = data.load(config.mnist_dir)
    logging.info("training on %s", environment.training_device())
    if config.workers > 1 and len(config.digits) > 1:
        from mnistgan import workers  # The parent process does not import TensorFlow.

        return workers.train_digits(config, mnist)
    environment.import_tensorflow_quietly()
    from mnistgan import gan  # Deferred: imports TensorFlow.

    return gan.train_digits(config, mnist)


def train_mnist(config):
    environment.import_tensorflow_quietly()
    from mnistgan import classifier  # Deferred: imports TensorFlow.

    mnist = data.load(config.mnist_dir)
    logging.info("training on %s", environment.training_device())
    return classifier.train_and_report(config, mnist)


def evaluate(config):
    environment.import_tensorflow_quietly()
    from mnistgan import report  # Deferred: imports TensorFlow.

    return report.evaluate(config, data.load(config.mnist_dir))


def export_mnist(config):
    environment.import_tensorflow_quietly()
    from mnistgan import sampling  # Deferred: imports TensorFlow.

    return sampling.export_mnist(config)


ACTIONS = {
    "fetch-mnist": fetch_mnist,
    "train-digits": train_digits,
    "train-mnist": train_mnist,
    "evaluate": evaluate,
    "export-mnist": export_mnist,
}


def run(config):
    """Runs `config.action`; returns the process exit status."""
    environment.quiet_library_logs()  # "Sharding callback duration" at every checkpoint, and the like.
    if config.action == "export-mnist":
        outputs.check_writable_dir(config.export.folder)  # It only reads output_dir.
    elif config.action != "fetch-mnist":
        outputs.check_writable_dir(config.output_dir)
    return ACTIONS[config.action](config)
