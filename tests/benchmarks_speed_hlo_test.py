"""Tests of benchmarks.speed_hlo: HLO op counts of the mlp_order1 steps."""

from absl.testing import absltest

from benchmarks import jax_baseline
from benchmarks import speed_hlo


class SpeedHloTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tf = {name: speed_hlo.loop_summary(
        speed_hlo.tf_hlo(8, order, mode, steps_per_call=3))
              for name, order, mode in (("regular", 0, None),
                                        ("sobolev", 1, None),
                                        ("fused", 1, "fused"))}

  def test_the_fused_step_has_fewer_multiply_adds(self):
    regular, sobolev, fused = (self.tf[k] for k in ("regular", "sobolev",
                                                    "fused"))
    self.assertLess(regular["dots"], sobolev["dots"])
    self.assertLess(fused["dots"], sobolev["dots"])
    self.assertLess(fused["macs"], sobolev["macs"])
    for summary in self.tf.values():
      self.assertEqual(summary["f64_ops"], 0)
      self.assertGreater(summary["body_instructions"], 0)

  def test_jax_does_the_same_arithmetic(self):
    if not jax_baseline.available():
      self.skipTest("needs the bench extra (jax, optax)")
    for name, order in (("regular", 0), ("sobolev", 1)):
      summary = speed_hlo.loop_summary(speed_hlo.jax_hlo(8, order, 3))
      self.assertAlmostEqual(summary["macs"] / self.tf[name]["macs"], 1.0,
                             delta=0.01)

  def test_a_module_without_a_loop_is_refused(self):
    with self.assertRaisesRegex(ValueError, "no while loop"):
      speed_hlo.loop_summary(speed_hlo.tf_hlo(4, 0, steps_per_call=1))

  def test_computations_parses_instructions(self):
    hlo = ("HloModule m\n\n%f (p: f32[2]) -> f32[2] {\n"
           "  %p = f32[2]{0} parameter(0)\n"
           "  ROOT %c = f32[2]{0} copy(%p)\n}\n")
    comps = speed_hlo.computations(hlo)
    self.assertEqual([op for _, _, op, _ in comps["f"]],
                     ["parameter", "copy"])


if __name__ == "__main__":
  absltest.main()
