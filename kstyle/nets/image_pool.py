"""History buffer of generated images, which CycleGAN's discriminators train on."""

import keras


@keras.saving.register_keras_serializable(package="kstyle")
class ImagePool(keras.layers.Layer):
    """A buffer of up to `pool_size` past generated images, held in layer variables.

    A port of `ImagePool` from junyanz/pytorch-CycleGAN-and-pix2pix
    (`util/image_pool.py`). Calling the layer on a batch of images queries the pool, one
    image after the other: while the pool is not full, the image is stored and returned;
    once it is full, with probability 0.5 a uniformly drawn stored image is returned and
    replaced by the new one, otherwise the new image is returned and the pool is left
    as it is. The discriminators then see a history of fakes rather than only the latest
    generator's, which damps oscillation (Shrivastava et al.).

    The pool is graph- and XLA-safe: its state is a non-trainable `images` variable of
    shape `(pool_size, H, W, C)` plus an int32 `count`, read and written one image at a
    time in a `tf.while_loop` over the batch, with randomness from a
    `keras.random.SeedGenerator`. Being layer weights, the state goes into `save_weights`
    files and checkpoints. The buffer is built from the first input's shape, so H, W and
    C must be static, and the pool serves one fixed training crop size; a checkpointed
    pool loads into an unbuilt one, which then takes the stored shape. Outputs carry no
    gradient. `pool_size=0` makes the layer the identity, with no state.

    Args:
        pool_size: Number of images kept; 50 in the reference, 0 disables the pool.
        seed: Optional int seed of the random draws.
        **kwargs: Those of `keras.layers.Layer`; the dtype defaults to float32 whatever
            the global policy, so stored fakes keep their precision.

    Example:

    >>> pool = ImagePool(pool_size=4, seed=0)
    >>> first = pool(keras.ops.ones((2, 8, 8, 3)))  # stored and returned as they are
    >>> int(pool.count.numpy())
    2

    Reference:
        Shrivastava et al., "Learning from Simulated and Unsupervised Images through
        Adversarial Training", CVPR 2017, https://arxiv.org/abs/1612.07828 (section 2.3);
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent
        Adversarial Networks", ICCV 2017, https://arxiv.org/abs/1703.10593 (section 4).
    """

    def __init__(self, pool_size: int = 50, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if pool_size < 0:
            raise ValueError(f"pool_size must be at least 0, got {pool_size}.")
        self.pool_size = int(pool_size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="pool_seed")
        self.images = None
        self.count = None

    def build(self, input_shape):
        if self.pool_size == 0:
            return
        image_shape = tuple(input_shape[1:])
        if len(image_shape) != 3 or any(d is None for d in image_shape):
            raise ValueError(
                "ImagePool needs images of static height, width and channels (a fixed "
                f"training crop size), got shape {tuple(input_shape)}.")
        # Under a tf.distribute strategy every replica keeps a pool of its own fakes, as
        # each process of the reference's data-parallel training does: the variables sync
        # on read, updates stay on their replica, and a checkpoint (read across replicas)
        # stores the first replica's pool, which a restore gives to all of them.
        with keras.name_scope(self.name, caller=self):
            self.images = keras.Variable(
                initializer="zeros", shape=(self.pool_size, *image_shape), dtype=self.dtype,
                trainable=False, name="images", synchronization="on_read",
                aggregation="only_first_replica")
            self.count = keras.Variable(
                initializer="zeros", shape=(), dtype="int32", trainable=False, name="count",
                synchronization="on_read", aggregation="only_first_replica")

    def call(self, images):
        if self.pool_size == 0:
            return images
        import tensorflow as tf

        images = tf.stop_gradient(images)
        batch = tf.shape(images)[0]
        draws = keras.random.uniform((batch,), seed=self.seed_generator)
        slots = keras.random.randint(
            (batch,), 0, self.pool_size, dtype="int32", seed=self.seed_generator)
        # The buffer is read and written one image at a time, in place; a copy of the
        # whole buffer per step (50 images) is what a functional update would cost.
        buffer = self.images.handle

        def query_one(i, count, returned):
            image = images[i][None]
            full = count >= self.pool_size
            swap = tf.logical_and(full, draws[i] > 0.5)
            # Not full: store at the next free slot. Full: store at a random slot, which
            # keeps its image (a no-op write) when no swap is drawn.
            slot = tf.where(full, slots[i], count)[None]
            stored = tf.raw_ops.ResourceGather(resource=buffer, indices=slot,
                                               dtype=self.images.dtype)
            tf.raw_ops.ResourceScatterUpdate(
                resource=buffer, indices=slot,
                updates=tf.where(tf.logical_and(full, ~swap), stored, image))
            returned = tf.tensor_scatter_nd_update(
                returned, [[i]], tf.where(swap, stored, image))
            return i + 1, tf.where(full, count, count + 1), returned

        # One image after the other (parallel_iterations=1): each query sees the
        # buffer as the previous one left it.
        _, count, returned = tf.while_loop(
            lambda i, count, returned: i < batch, query_one,
            (tf.constant(0), tf.convert_to_tensor(self.count), tf.zeros_like(images)),
            parallel_iterations=1)
        self.count.assign(count)
        return returned

    def query(self, images):
        """Returns `images` with some replaced by past ones; the same as calling the layer."""
        return self(images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def load_own_variables(self, store):
        # A pool is built on its first batch; one restored before training builds now,
        # from the stored buffer's shape. A pool saved before its first batch was empty.
        if self.pool_size > 0 and not len(store.keys()):
            if self.built:
                self.count.assign(0)
            return
        if not self.built and self.pool_size > 0:
            self.build((None, *store["0"].shape[1:]))
        super().load_own_variables(store)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "seed": self.seed})
        return config
