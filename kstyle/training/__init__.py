"""What ``kstyle.train.fit`` uses: the recipe's datasets and model (``builders``), the
run folder's files (``run_folder``), checkpoints, the per-step callback, the collapse
monitor, sample grids (``visual``), learning-rate schedules and tf.distribute strategies."""
