"""Installs the sobolev package and its experiment packages."""

import setuptools

# Tested versions (pinned). The core needs only TF, Sonnet, numpy and absl.
CORE = [
    "tensorflow==2.21.0",
    "keras==3.15.1",  # Installed by tensorflow; sobolev.keras is tested on it.
    "dm-sonnet==2.0.2",
    "numpy>=1.26,<3",
    "absl-py>=2.1,<3",
]
EXTRAS = {
    "atari": ["gymnasium==1.4.0", "ale-py==0.12.1"],
    # tfds needs importlib_resources to prepare any dataset (4.9.10 imports
    # it in its download/prepare path but does not declare it).
    "datasets": ["tensorflow-datasets==4.9.10", "scikit-learn==1.9.1",
                 "importlib_resources==7.1.0"],
    # sobolev.experiment: configs, TensorBoard events, progress bars, the
    # reports' t quantiles and bootstrap intervals (scipy.stats).
    # tensorflow-probability: the benchmarks' L-BFGS optimiser
    # (`benchmarks/lbfgs.py`); TFP 0.25 needs tf-keras to import.
    "experiments": ["ml-collections==1.1.0", "tensorboard==2.21.0",
                    "tqdm==4.70.1", "scipy==1.17.1",
                    "tensorflow-probability==0.25.0", "tf-keras==2.21.0"],
    "plots": ["matplotlib==3.11.2"],
    # The JAX yardstick of `benchmarks.speed` (benchmarks/jax_baseline.py).
    "bench": ["jax==0.10.2", "optax==0.2.8"],
    "test": [
        "pytest==9.0.3",
        "pytest-xdist==3.8.0",
        "parameterized==0.9.0",
        "scipy==1.17.1",  # Hand-checked derivatives (scipy.special).
    ],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setuptools.setup(
    name="sobolev",
    version="0.1.0",
    description=("Sobolev Training for Neural Networks (Czarnecki et al., "
                 "NIPS 2017) in TensorFlow 2 and Sonnet 2."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=setuptools.find_packages(
        include=["sobolev", "sobolev.*", "benchmarks", "benchmarks.*",
                 "distillation", "distillation.*", "synthetic_gradients",
                 "synthetic_gradients.*"]),
    # The teachers (not their training state, which only training resumes).
    package_data={"distillation": ["teachers/*/teacher.*",
                                   "teachers/*/*.csv"],
                  # The Debian Fashion-MNIST files' checksums (tfds).
                  "synthetic_gradients": ["fashion_mnist/checksums.tsv"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
