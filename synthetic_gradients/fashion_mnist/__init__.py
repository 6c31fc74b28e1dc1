"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` via tfds."""
