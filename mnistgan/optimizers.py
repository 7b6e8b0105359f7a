"""Adam with TensorFlow's fused update kernel.

Keras 3's Adam updates each variable with about ten elementwise operations,
each a full pass over the weights; on a CPU at batch 32 that is 7.8 ms of an
80 ms GAN step for the discriminator alone. TensorFlow's `ResourceApplyAdam`
kernel (the one `tf.compat.v1.train.AdamOptimizer`, and so the original
mnist-gan, used) does the same update in one pass: 2.5 ms. Same formula,
same slots, so checkpoints and `use_ema` work as with Keras' Adam.
"""

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose per-variable update is one fused TensorFlow kernel (no amsgrad)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no amsgrad variant")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )
