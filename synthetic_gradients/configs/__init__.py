"""Presets of the synthetic-gradients experiment (`get_config()` per file).

* `digits.py` (= `default.py`): scikit-learn's 8x8 digits at 16x16, offline.
* `fashion_mnist.py`: Fashion-MNIST from the Debian package, offline.
* `cifar10.py`: the paper's CIFAR-10 setting (3 SG modules).
* `imagenet2012.py`: ResNet-50 on ImageNet (1 SG module; 3 with
  `--config.num_modules=3`).
"""
