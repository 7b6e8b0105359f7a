"""mnistgan: per-digit DCGANs on MNIST and classifiers trained on their output."""
