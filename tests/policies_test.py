"""Tests of the core action sampler (sobolev.policies)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev import policies


class InverseCdfTest(tf.test.TestCase, parameterized.TestCase):

  def test_hand_computed_actions(self):
    # pi = [0.2, 0.5, 0.3]: cdf = [0.2, 0.7, 1.0].
    logits = np.log([[0.2, 0.5, 0.3]] * 5)
    actions = policies.inverse_cdf_actions(
        logits, [0.1, 0.25, 0.69, 0.71, 0.99])
    self.assertAllEqual(actions, [0, 1, 1, 2, 2])
    self.assertEqual(actions.dtype, np.int32)

  def test_logits_and_log_probabilities_give_the_same_actions(self):
    logits = np.array([[3.0, 1.0, -2.0], [0.0, 0.0, 50.0]])
    log_probs = tf.nn.log_softmax(logits).numpy()
    u = np.random.default_rng(0).random(2)
    self.assertAllEqual(policies.inverse_cdf_actions(logits, u),
                        policies.inverse_cdf_actions(log_probs, u))
    self.assertAllClose(policies.probabilities(logits), np.exp(log_probs))

  def test_impossible_actions_are_never_chosen(self):
    # pi = [0.5, 0, 0.5]: u = 0.5 lies on the boundary cdf[0] = cdf[1] and
    # goes to action 2, not the impossible action 1; likewise u = 0 with
    # pi = [0, 1] gives action 1.
    self.assertAllEqual(
        policies.inverse_cdf_actions([[0.0, -np.inf, 0.0]], [0.5]), [2])
    self.assertAllEqual(
        policies.inverse_cdf_actions([[-np.inf, 0.0]], [0.0]), [1])
    # Seven equal actions and an impossible one: the rounded cdf ends at
    # 1 - 2^-52, below u = 1 - 2^-53; u maps to the last possible action
    # (6), not to the impossible one (7).
    logits = [[0.0] * 7 + [-np.inf]]
    u = np.nextafter(1.0, 0.0)
    self.assertLess(policies.probabilities(logits).cumsum()[-1], u)
    self.assertAllEqual(policies.inverse_cdf_actions(logits, [u]), [6])

  def test_greedy_is_argmax_first_on_ties(self):
    logits = tf.constant([[0.0, 2.0, 2.0], [5.0, -1.0, 4.9]])
    self.assertAllEqual(policies.greedy_actions(logits), [1, 0])
    sampler = policies.ActionSampler(seed=0, greedy=True)
    self.assertAllEqual(sampler(logits), [1, 0])
    self.assertEqual(sampler.rng.random(), np.random.default_rng(0).random())

  def test_sampled_frequencies_match_the_probabilities(self):
    probs = np.array([0.1, 0.6, 0.05, 0.25])
    n = 200_000
    sampler = policies.ActionSampler(seed=1)
    actions = sampler(np.tile(np.log(probs), [n, 1]))
    freq = np.bincount(actions, minlength=4) / n
    # Within 5 binomial standard deviations.
    self.assertTrue(np.all(np.abs(freq - probs) <
                           5 * np.sqrt(probs * (1 - probs) / n)),
                    (freq, probs))

  def test_numpy_stream_is_that_of_default_rng(self):
    # One uniform per row from np.random.default_rng(seed), as the former
    # collection and evaluation samplers drew them.
    logits = np.random.default_rng(5).normal(size=(7, 6))
    rng = np.random.default_rng(3)
    expected = []
    for _ in range(3):
      u = rng.random((7, 1))
      expected.append(policies.inverse_cdf_actions(logits, u))
    sampler = policies.ActionSampler(seed=3)
    for e in expected:
      self.assertAllEqual(sampler(logits), e)

  def test_seeded_and_deterministic(self):
    logits = np.zeros([50, 5])
    a = policies.ActionSampler(seed=7)(logits)
    self.assertAllEqual(a, policies.ActionSampler(seed=7)(logits))
    self.assertNotAllEqual(a, policies.ActionSampler(seed=8)(logits))

  def test_tf_generator_is_deterministic_and_advances(self):
    logits = tf.zeros([40, 6])
    first = policies.ActionSampler(rng=tf.random.Generator.from_seed(2))
    second = policies.ActionSampler(rng=tf.random.Generator.from_seed(2))
    a1, a2 = first(logits), first(logits)
    self.assertAllEqual(a1, second(logits))
    self.assertAllEqual(a2, second(logits))
    self.assertNotAllEqual(a1, a2)
    # The uniforms are the generator's float64 draws.
    rng = tf.random.Generator.from_seed(2)
    u = rng.uniform([40, 1], dtype=tf.float64).numpy()
    self.assertAllEqual(a1, np.minimum((u * 6).astype(int)[:, 0], 5))

  @parameterized.named_parameters(
      ("rank1", np.zeros(3), ValueError, "shape"),
      ("no_actions", np.zeros([2, 0]), ValueError, "shape"),
      ("nan", [[0.0, np.nan]], ValueError, "NaN"),
      ("all_minus_inf", [[-np.inf, -np.inf]], ValueError, "finite maximum"),
      ("plus_inf", [[np.inf, 0.0]], ValueError, "finite maximum"),
      ("string", [["a", "b"]], TypeError, "numeric"))
  def test_bad_logits(self, logits, error, message):
    with self.assertRaisesRegex(error, message):
      policies.ActionSampler(seed=0)(logits)

  def test_bad_uniforms(self):
    with self.assertRaisesRegex(ValueError, "one per row"):
      policies.inverse_cdf_actions(np.zeros([3, 2]), [0.5, 0.5])
    with self.assertRaisesRegex(ValueError, r"\[0, 1\)"):
      policies.inverse_cdf_actions(np.zeros([1, 2]), [1.0])

  def test_bad_constructor_arguments(self):
    with self.assertRaisesRegex(TypeError, "`seed`"):
      policies.ActionSampler(seed="abc")
    with self.assertRaisesRegex(TypeError, "`greedy`"):
      policies.ActionSampler(greedy="yes")
    with self.assertRaisesRegex(TypeError, "`rng`"):
      policies.ActionSampler(rng=np.random.RandomState(0))


if __name__ == "__main__":
  tf.test.main()
