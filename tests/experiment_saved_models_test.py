"""Tests of sobolev.experiment.saved_models.export (plain-TF loadable)."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev.experiment import saved_models

# Loads a SavedModel with plain TensorFlow in a process that never imports
# this project, and writes the outputs of both call paths.
_LOADER = """
import json, sys
import numpy as np
import tensorflow as tf
path, inputs, out = sys.argv[1], sys.argv[2], sys.argv[3]
x = tf.constant(np.load(inputs))
loaded = tf.saved_model.load(path)
serving = loaded.signatures["serving_default"]
result = {
    "call": loaded(x).numpy().tolist(),
    "serving": {k: v.numpy().tolist() for k, v in serving(x).items()},
    "inputs": {k: [v.dtype.name, v.shape.as_list()]
               for k, v in serving.structured_input_signature[1].items()},
    "imported_project": sorted(m for m in sys.modules
                               if m.split(".")[0] in ("sobolev",
                                                      "benchmarks",
                                                      "distillation",
                                                      "synthetic_gradients")),
}
with open(out, "w") as f:
  json.dump(result, f)
"""


class TinyNet(snt.Module):
  """uint8 frames -> logits, like the distillation students."""

  def __init__(self):
    super().__init__()
    self.mlp = snt.nets.MLP([8, 3])

  def __call__(self, frames):
    x = tf.cast(tf.reshape(frames, [tf.shape(frames)[0], -1]), tf.float32)
    return self.mlp(x / 255.0)


class ExportTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    tf.random.set_seed(0)
    self.dir = self.create_tempdir().full_path

  def _load_elsewhere(self, path, inputs):
    npy = os.path.join(self.dir, "inputs.npy")
    np.save(npy, inputs)
    out = os.path.join(self.dir, "out.json")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run([sys.executable, "-c", _LOADER, path, npy, out],
                          cwd=self.dir, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    with open(out) as f:
      return json.load(f)

  def test_round_trip_in_a_process_without_this_project(self):
    net = TinyNet()
    frames = np.random.default_rng(0).integers(0, 256, size=(5, 4, 4, 2),
                                               dtype=np.uint8)
    expected = net(frames).numpy()
    path = os.path.join(self.dir, "student")
    self.assertEqual(
        saved_models.export(net, [tf.TensorSpec([None, 4, 4, 2], tf.uint8)],
                            path, output_name="logits"), path)
    got = self._load_elsewhere(path, frames)
    self.assertEqual(got["imported_project"], [])
    self.assertAllClose(got["call"], expected, rtol=1e-6, atol=1e-6)
    self.assertEqual(list(got["serving"]), ["logits"])
    self.assertAllClose(got["serving"]["logits"], expected, rtol=1e-6,
                        atol=1e-6)
    (spec,) = got["inputs"].values()
    self.assertEqual(spec, ["uint8", [None, 4, 4, 2]])
    # Another batch size works too (the signature has a None batch).
    loaded = tf.saved_model.load(path)
    self.assertAllClose(loaded(frames[:2]), expected[:2], rtol=1e-6,
                        atol=1e-6)

  def test_custom_function_and_multiple_outputs(self):
    net = snt.nets.MLP([4, 2])
    x = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    net(x)
    path = os.path.join(self.dir, "probs")
    saved_models.export(net, [tf.TensorSpec([None, 5])], path,
                        fn=lambda v: tf.nn.softmax(net(v)))
    loaded = tf.saved_model.load(path)
    self.assertAllClose(loaded(x), tf.nn.softmax(net(x)))

    pair = os.path.join(self.dir, "pair")
    saved_models.export(net, [tf.TensorSpec([None, 5])], pair,
                        fn=lambda v: (net(v), 2.0 * net(v)))
    outputs = tf.saved_model.load(pair).signatures["serving_default"](
        tf.constant(x))
    self.assertSameElements(outputs, ["output_0", "output_1"])
    self.assertAllClose(outputs["output_1"], 2.0 * net(x))

    named = os.path.join(self.dir, "named")
    saved_models.export(net, [tf.TensorSpec([None, 5])], named,
                        fn=lambda v: {"logits": net(v), "value": net(v)[:, 0]})
    outputs = tf.saved_model.load(named).signatures["serving_default"](
        tf.constant(x))
    self.assertSameElements(outputs, ["logits", "value"])

  def test_replaces_an_old_export_and_leaves_no_temporaries(self):
    net = snt.Linear(2)
    x = tf.ones([1, 3])
    net(x)
    path = os.path.join(self.dir, "model")
    saved_models.export(net, [tf.TensorSpec([None, 3])], path)
    net.w.assign(net.w + 1.0)
    saved_models.export(net, [tf.TensorSpec([None, 3])], path)
    self.assertAllClose(tf.saved_model.load(path)(x), net(x))
    self.assertEqual(os.listdir(self.dir), ["model"])
    umask = os.umask(0o022)
    os.umask(umask)
    self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o777 & ~umask)

  def test_bad_signature_raises(self):
    net = snt.Linear(2)
    for signature in ([], [tf.ones([1, 3])], [None], [[2, 3]]):
      with self.assertRaisesRegex(TypeError, "`input_signature` must be a "
                                  "non-empty list of tf.TensorSpec"):
        saved_models.export(net, signature, os.path.join(self.dir, "x"))
    self.assertEqual(os.listdir(self.dir), [])


if __name__ == "__main__":
  tf.test.main()
