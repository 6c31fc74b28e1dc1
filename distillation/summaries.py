"""TensorBoard scalar summaries that do not need the tensorboard package.

`tf.summary.scalar` is implemented by the tensorboard package, which is not a
dependency here. `scalar` writes the same event (a float32 tensor with the
"scalars" plugin metadata), which TensorBoard shows in its Scalars tab.
"""

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

_METADATA = summary_pb2.SummaryMetadata()
_METADATA.plugin_data.plugin_name = "scalars"
_METADATA_BYTES = _METADATA.SerializeToString()


def scalar(name: str, value: float, step: int) -> None:
  """Writes a scalar to the default summary writer (no-op without one).

  Args:
    name: tag, e.g. 'train/loss'.
    value: the value.
    step: global step (here: emulator frames or training steps).
  """
  tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                   metadata=_METADATA_BYTES)
