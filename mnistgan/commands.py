"""What each action of main.py does, given the run's `Config`."""

import contextlib

from absl import logging

from mnistgan import config as config_lib, data, environment, generators, jobs, locks, outputs, precision


def fetch_mnist(config):
    mnist = data.load(config.mnist_dir)
    print(
        f"MNIST verified in {config.mnist_dir}: {len(mnist.train_images)} training, "
        f"{len(mnist.validation_images)} validation, {len(mnist.test_images)} test images"
    )
    return 0


def train_digits(config):
    # Every path below (workers, cluster, the evaluator that steers) sees only the training images the runs may use.
    mnist = data.first_per_digit(data.load(config.mnist_dir), config.gan.real_per_digit)
    logging.info("training on %s", environment.training_device())
    if config.engine == "ray":
        from mnistgan import cluster  # The driver does not import TensorFlow either.

        return cluster.train_digits(config, mnist)
    # A conditional family's network is one unit of work for every digit: it uses all the cores in this process.
    if config.workers > 1 and len(config.digits) > 1 and config.gan.family not in config_lib.CONDITIONAL_FAMILIES:
        from mnistgan import workers  # The parent process does not import TensorFlow.

        return workers.train_digits(config, mnist)
    # The runs' locks and settings first: a digit that another command trains, or a changed flag, is refused
    # before TensorFlow starts.
    with locks.holding(jobs.job_locks(config)):
        jobs.check_settings(config)
        config = precision.decided(config, config.gan.precision)
        environment.import_tensorflow_quietly()
        from mnistgan import gan  # Deferred: imports TensorFlow.

        return gan.train_digits(config, mnist, held=True)


# The consumers below first check, without TensorFlow, the generator files they will load
# (generators.locate), so one that is missing, truncated or not a .keras archive is refused at once
# rather than after seconds of importing TensorFlow. They check again when they load them.


def train_mnist(config):
    mnist = data.load(config.mnist_dir)  # Whole: each classifier takes the images it may use (real_per_digit).
    if set(config.data_sources) & set(config_lib.GENERATED_SOURCES):
        locks.refuse_digits_in_training(config.output_dir)
        generators.classifier_entries(config.output_dir, config.classifier)
        generators.check_real_per_digit(config.output_dir, config.classifier.real_per_digit)
    config = precision.decided(config, config.classifier.precision)
    environment.import_tensorflow_quietly()
    from mnistgan import classifier  # Deferred: imports TensorFlow.

    return classifier.train_and_report(config, mnist)


def evaluate(config):
    mnist = data.load(config.mnist_dir)
    digits = generators.measured_digits(config.output_dir, config.digits)
    generators.kept_entries(config.output_dir, digits)
    with contextlib.suppress(generators.MissingGenerators):  # The report says that the stream is not measured.
        generators.stream_entries(config.output_dir, config.classifier, digits)
    environment.import_tensorflow_quietly()
    from mnistgan import report  # Deferred: imports TensorFlow.

    return report.evaluate(config, mnist)


def export_mnist(config):
    if config.export.source == "classifier":
        generators.classifier_entries(config.output_dir, config.classifier)
    else:
        generators.kept_entries(config.output_dir)
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


def execute(config):
    """Carries out `config.action`; returns the process exit status.

    Raises:
      UserError: among others, for a disk that fills up while it writes (files stay whole).
    """
    environment.quiet_library_logs()  # "Sharding callback duration" at every checkpoint, and the like.
    written = config.export.folder if config.action == "export-mnist" else config.output_dir  # Export only reads output_dir.
    if config.action != "fetch-mnist":
        outputs.check_writable_dir(written)
    try:
        return ACTIONS[config.action](config)
    except Exception as e:  # Only a full disk is turned into a refusal; anything else goes on up.
        refusal = outputs.out_of_space(e, written)
        if refusal is None:
            raise
        raise refusal from None
