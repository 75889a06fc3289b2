"""TensorFlow's own pix2pix tutorial training step, the speed yardstick for kstyle's Pix2Pix.

Copied from tensorflow/docs, `site/en/tutorials/generative/pix2pix.ipynb` ("pix2pix:
Image-to-image translation with a conditional GAN", Apache License 2.0, Copyright 2019
The TensorFlow Authors). It is kept here only as the yardstick that
`bench/train_speed.py` times kstyle against; nothing in `kstyle` imports it.

The network, loss and optimizer code is the tutorial's, statement for statement, with
4-space indentation. Three changes, none of which touches the computation:

- the models and optimizers are built inside `make_train_step` rather than at module
  level, so that each call gets fresh ones;
- `train_step` is wrapped with `tf.function(jit_compile=...)` instead of `@tf.function`,
  so the benchmark can time it with and without XLA;
- the TensorBoard summary writes at the end of `train_step` are replaced by returning
  the four losses they logged, so a caller can wait for the step to finish.

The data pipeline, checkpointing and plotting of the tutorial are left out. The tutorial
uses `tf.keras`, which is Keras 3 when Keras 3 is installed; that is what runs here.
"""

import tensorflow as tf

OUTPUT_CHANNELS = 3
LAMBDA = 100

loss_object = tf.keras.losses.BinaryCrossentropy(from_logits=True)


def downsample(filters, size, apply_batchnorm=True):
    """Conv (stride 2) -> BatchNorm -> LeakyReLU, as in the tutorial."""
    initializer = tf.random_normal_initializer(0., 0.02)

    result = tf.keras.Sequential()
    result.add(
        tf.keras.layers.Conv2D(filters, size, strides=2, padding='same',
                               kernel_initializer=initializer, use_bias=False))

    if apply_batchnorm:
        result.add(tf.keras.layers.BatchNormalization())

    result.add(tf.keras.layers.LeakyReLU())

    return result


def upsample(filters, size, apply_dropout=False):
    """Transposed conv (stride 2) -> BatchNorm -> Dropout? -> ReLU, as in the tutorial."""
    initializer = tf.random_normal_initializer(0., 0.02)

    result = tf.keras.Sequential()
    result.add(
        tf.keras.layers.Conv2DTranspose(filters, size, strides=2,
                                        padding='same',
                                        kernel_initializer=initializer,
                                        use_bias=False))

    result.add(tf.keras.layers.BatchNormalization())

    if apply_dropout:
        result.add(tf.keras.layers.Dropout(0.5))

    result.add(tf.keras.layers.ReLU())

    return result


def Generator():  # noqa: N802 - the tutorial's name.
    """The tutorial's U-Net generator for 256x256x3 images."""
    inputs = tf.keras.layers.Input(shape=[256, 256, 3])

    down_stack = [
        downsample(64, 4, apply_batchnorm=False),  # (batch_size, 128, 128, 64)
        downsample(128, 4),  # (batch_size, 64, 64, 128)
        downsample(256, 4),  # (batch_size, 32, 32, 256)
        downsample(512, 4),  # (batch_size, 16, 16, 512)
        downsample(512, 4),  # (batch_size, 8, 8, 512)
        downsample(512, 4),  # (batch_size, 4, 4, 512)
        downsample(512, 4),  # (batch_size, 2, 2, 512)
        downsample(512, 4),  # (batch_size, 1, 1, 512)
    ]

    up_stack = [
        upsample(512, 4, apply_dropout=True),  # (batch_size, 2, 2, 1024)
        upsample(512, 4, apply_dropout=True),  # (batch_size, 4, 4, 1024)
        upsample(512, 4, apply_dropout=True),  # (batch_size, 8, 8, 1024)
        upsample(512, 4),  # (batch_size, 16, 16, 1024)
        upsample(256, 4),  # (batch_size, 32, 32, 512)
        upsample(128, 4),  # (batch_size, 64, 64, 256)
        upsample(64, 4),  # (batch_size, 128, 128, 128)
    ]

    initializer = tf.random_normal_initializer(0., 0.02)
    last = tf.keras.layers.Conv2DTranspose(OUTPUT_CHANNELS, 4,
                                           strides=2,
                                           padding='same',
                                           kernel_initializer=initializer,
                                           activation='tanh')  # (batch_size, 256, 256, 3)

    x = inputs

    # Downsampling through the model
    skips = []
    for down in down_stack:
        x = down(x)
        skips.append(x)

    skips = reversed(skips[:-1])

    # Upsampling and establishing the skip connections
    for up, skip in zip(up_stack, skips):
        x = up(x)
        x = tf.keras.layers.Concatenate()([x, skip])

    x = last(x)

    return tf.keras.Model(inputs=inputs, outputs=x)


def generator_loss(disc_generated_output, gen_output, target):
    """Sigmoid cross-entropy against ones plus LAMBDA times the L1 distance."""
    gan_loss = loss_object(tf.ones_like(disc_generated_output), disc_generated_output)

    # Mean absolute error
    l1_loss = tf.reduce_mean(tf.abs(target - gen_output))

    total_gen_loss = gan_loss + (LAMBDA * l1_loss)

    return total_gen_loss, gan_loss, l1_loss


def Discriminator():  # noqa: N802 - the tutorial's name.
    """The tutorial's conditional 70x70 PatchGAN; 256x256 inputs give 30x30 logits."""
    initializer = tf.random_normal_initializer(0., 0.02)

    inp = tf.keras.layers.Input(shape=[256, 256, 3], name='input_image')
    tar = tf.keras.layers.Input(shape=[256, 256, 3], name='target_image')

    x = tf.keras.layers.concatenate([inp, tar])  # (batch_size, 256, 256, channels*2)

    down1 = downsample(64, 4, False)(x)  # (batch_size, 128, 128, 64)
    down2 = downsample(128, 4)(down1)  # (batch_size, 64, 64, 128)
    down3 = downsample(256, 4)(down2)  # (batch_size, 32, 32, 256)

    zero_pad1 = tf.keras.layers.ZeroPadding2D()(down3)  # (batch_size, 34, 34, 256)
    conv = tf.keras.layers.Conv2D(512, 4, strides=1,
                                  kernel_initializer=initializer,
                                  use_bias=False)(zero_pad1)  # (batch_size, 31, 31, 512)

    batchnorm1 = tf.keras.layers.BatchNormalization()(conv)

    leaky_relu = tf.keras.layers.LeakyReLU()(batchnorm1)

    zero_pad2 = tf.keras.layers.ZeroPadding2D()(leaky_relu)  # (batch_size, 33, 33, 512)

    # (batch_size, 30, 30, 1)
    last = tf.keras.layers.Conv2D(1, 4, strides=1,
                                  kernel_initializer=initializer)(zero_pad2)

    return tf.keras.Model(inputs=[inp, tar], outputs=last)


def discriminator_loss(disc_real_output, disc_generated_output):
    """Sigmoid cross-entropy: real pairs against ones, generated pairs against zeros."""
    real_loss = loss_object(tf.ones_like(disc_real_output), disc_real_output)

    generated_loss = loss_object(tf.zeros_like(disc_generated_output), disc_generated_output)

    total_disc_loss = real_loss + generated_loss

    return total_disc_loss


def make_train_step(jit_compile: bool):
    """Builds the tutorial's models and optimizers and returns its compiled train step.

    Args:
        jit_compile: Whether `tf.function` compiles the step with XLA.

    Returns:
        `train_step(input_image, target, step)`, which runs one update of both networks
        on a batch of 256x256x3 images in [-1, 1] and returns
        `(gen_total_loss, gen_gan_loss, gen_l1_loss, disc_loss)`. Pass `step` as a
        tensor (the tutorial does), or every new value retraces the function.

    Example:

    >>> train_step = make_train_step(jit_compile=False)
    >>> images = tf.zeros((1, 256, 256, 3))
    >>> losses = train_step(images, images, tf.constant(0, tf.int64))
    """
    generator = Generator()
    discriminator = Discriminator()

    generator_optimizer = tf.keras.optimizers.Adam(2e-4, beta_1=0.5)
    discriminator_optimizer = tf.keras.optimizers.Adam(2e-4, beta_1=0.5)

    def train_step(input_image, target, step):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = generator(input_image, training=True)

            disc_real_output = discriminator([input_image, target], training=True)
            disc_generated_output = discriminator([input_image, gen_output], training=True)

            gen_total_loss, gen_gan_loss, gen_l1_loss = generator_loss(
                disc_generated_output, gen_output, target)
            disc_loss = discriminator_loss(disc_real_output, disc_generated_output)

        generator_gradients = gen_tape.gradient(gen_total_loss,
                                                generator.trainable_variables)
        discriminator_gradients = disc_tape.gradient(disc_loss,
                                                     discriminator.trainable_variables)

        generator_optimizer.apply_gradients(zip(generator_gradients,
                                                generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(discriminator_gradients,
                                                    discriminator.trainable_variables))

        # The tutorial writes these four to TensorBoard here, at `step // 1000`.
        return gen_total_loss, gen_gan_loss, gen_l1_loss, disc_loss

    return tf.function(train_step, jit_compile=jit_compile)
