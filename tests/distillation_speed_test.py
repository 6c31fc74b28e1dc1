"""Smoke test of the distillation student step-time benchmark."""

import os
import tempfile

import tensorflow as tf

from distillation import networks
from distillation import speed
from distillation.configs import speed as speed_config
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import results


class SpeedTest(tf.test.TestCase):

  def _config(self, **overrides):
    config = speed_config.get_config()
    config.update(dict(repeats=2, calls=1, steps_per_call=2, warmup_calls=1,
                       compile_modes=("graph",), batch_size=2), **overrides)
    return config

  def test_smoke_writes_every_variant(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    rows = speed.run(self._config(), workdir)
    self.assertEqual([r.variant for r in rows],
                     ["kl", "kl_sobolev", "teacher_vjp", "student_vjp",
                      "student_grads"])
    for r in rows:
      self.assertGreater(r.min_us, 0.0)
      self.assertGreaterEqual(r.median_us, r.min_us)
      self.assertEqual(r.compiled, "graph")
    self.assertEqual(results.read(os.path.join(workdir, "speed.csv"),
                                  speed.Row), rows)
    with open(os.path.join(workdir, "speed.md")) as f:
      self.assertIn("| kl_sobolev | 2 | 6 |", f.read())
    record = files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"][-1]
    self.assertEqual(record["status"], "finished")

  def test_student_steps_train(self):
    config = self._config()
    for method in ("regular", "sobolev"):
      model, objective, batch = speed.student_step(method, config)
      # The student is differentiated on image-shaped states directly.
      self.assertIsInstance(model, networks.StudentNet)
      self.assertEqual(batch["x"].shape, (2, 84, 84, 4))
      total, terms = objective(model, batch)[:2]
      self.assertTrue(bool(tf.math.is_finite(total)))
      if method == "sobolev":
        self.assertIn("order_1", terms)

  def test_bad_settings_are_rejected(self):
    for overrides, message in ((dict(repeats=0), "repeats"),
                               (dict(compile_modes=("jit",)),
                                "compile_modes"),
                               (dict(num_actions=1), "num_actions")):
      with self.assertRaisesRegex(errors.ConfigError, message):
        speed.check(self._config(**overrides))


if __name__ == "__main__":
  tf.test.main()
