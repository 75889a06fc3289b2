"""train.distribute = "mirrored": data-parallel training matches one device.

TensorFlow's device list is fixed when it starts, so each check runs in a fresh process
that splits the CPU into two logical devices first.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TINY

TESTS = Path(__file__).resolve().parent

PRELUDE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    sys.path.insert(0, sys.argv[1])
""")


def run_script(body: str, *args) -> dict:
    result = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body),
                             str(TESTS), *map(str, args)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_step_on_two_replicas_equals_one_device():
    out = run_script("""
        from kstyle.models import Pix2Pix

        def step(strategy):
            keras.utils.set_random_seed(0)
            with strategy.scope():
                model = Pix2Pix.build_from_options(
                    base_filters=8, num_downs=5, d_base_filters=8, d_layers=2,
                    norm="instance", dropout=0.0)
                # Plain SGD: its update is proportional to the gradient, so a gradient
                # summed over replicas instead of averaged would show as a 2x update.
                model.compile(g_optimizer=keras.optimizers.SGD(0.1),
                              d_optimizer=keras.optimizers.SGD(0.1))
                model.build_optimizers()
            before = [v.numpy().copy() for v in model.generator.trainable_variables]
            rng = np.random.default_rng(0)
            a, b = (rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32") for _ in "ab")
            logs = model.fit(tf.data.Dataset.from_tensor_slices((a, b)).batch(4),
                             epochs=1, verbose=0).history
            after = [v.numpy() for v in model.generator.trainable_variables]
            return logs, [x - y for x, y in zip(after, before)]

        single_logs, single = step(tf.distribute.get_strategy())
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        mirrored_logs, multi = step(mirrored)
        ratios = [float(np.linalg.norm(m) / np.linalg.norm(s))
                  for s, m in zip(single, multi) if np.linalg.norm(s) > 1e-6]
        print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "ratios": ratios,
                          "single": single_logs, "mirrored": mirrored_logs}))
    """)
    assert out["replicas"] == 2
    for key, value in out["single"].items():
        assert out["mirrored"][key][0] == __import__("pytest").approx(value[0], rel=1e-5)
    assert all(0.95 < r < 1.05 for r in out["ratios"]), out["ratios"]


@pytest.mark.slow
def test_fit_with_distribute_mirrored_matches_one_device(tmp_path):
    out = run_script("""
        from conftest import tiny_recipe
        from kstyle.train import fit
        from pathlib import Path

        tmp = Path(sys.argv[2])
        logs = {}
        for mode in ("none", "mirrored"):
            recipe = tiny_recipe(tmp, f"train.distribute={mode}", "model.dropout=0.0",
                                 name=mode)
            result = fit(recipe, verbose=0, log=lambda *_: None)
            logs[mode] = {k: float(v) for k, v in result.logs.items()}
            logs[mode]["step"] = result.step
            logs[mode]["translator"] = (result.run_dir / "translator.keras").is_file()
        print(json.dumps(logs))
    """, tmp_path)
    single, mirrored = out["none"], out["mirrored"]
    assert mirrored["step"] == single["step"] == 8 and mirrored["translator"]
    # Equal up to float summation order, which Adam's sign-like first steps amplify a
    # little over 8 steps (the fixed-batch test above checks one step exactly).
    for key in ("g_l1_loss", "val_l1"):
        assert abs(mirrored[key] - single[key]) <= 2e-2 * abs(single[key]), (key, out)


@pytest.mark.slow
def test_cyclegan_with_image_pools_trains_mirrored_and_resumes(tmp_path):
    out = run_script("""
        from conftest import tiny_cyclegan_recipe
        from kstyle.train import Run, fit
        from pathlib import Path

        tmp = Path(sys.argv[2])
        recipe = tiny_cyclegan_recipe(tmp, "train.distribute=mirrored", "model.pool_size=3",
                                      "data.batch_size=2", "train.epochs=1")
        first = fit(recipe, verbose=0, log=lambda *_: None)
        again = tiny_cyclegan_recipe(tmp, "train.distribute=mirrored", "model.pool_size=3",
                                     "data.batch_size=2", "train.epochs=2")
        run = Run(again, log=lambda *_: None)
        run.restore()
        pools = run.model.pools
        restored = {"count": int(pools.fake_a.count.numpy()),
                    "nonzero": float(abs(pools.fake_a.images.numpy()).sum())}
        second = fit(again, verbose=0, log=lambda *_: None)
        print(json.dumps({"first": first.step, "second": second.step,
                          "resumed": second.resumed_from, "restored": restored,
                          "finite": all(abs(float(v)) < 1e9 for v in second.logs.values()),
                          "replicas": run.strategy.num_replicas_in_sync}))
    """, tmp_path)
    assert out["replicas"] == 2
    # Each replica keeps its own pool of its own fakes (as each process of a
    # data-parallel PyTorch run does); the checkpoint holds the first replica's.
    assert out["restored"]["count"] == 3 and out["restored"]["nonzero"] > 0
    assert out["resumed"] == out["first"] > 0 and out["second"] == 2 * out["first"]
    assert out["finite"]


WORKER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from conftest import tiny_recipe
    from kstyle.train import fit

    recipe = tiny_recipe(Path(sys.argv[2]), *sys.argv[3:], name="mw")
    result = fit(recipe, verbose=0, log=lambda *_: None)
    print(json.dumps({"step": result.step, "run_dir": str(result.run_dir),
                      **{k: float(v) for k, v in result.logs.items()}}))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_on_two_localhost_processes_matches_one_process(tmp_path):
    overrides = ["model.dropout=0.0"]
    ports = [_free_port(), _free_port()]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    workers = []
    for index in (0, 1):
        config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                  "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TMPDIR": str(scratch)}
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(TESTS), str(tmp_path / "multi"),
             "train.distribute=multi_worker", *overrides],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    single = subprocess.run([sys.executable, "-c", WORKER, str(TESTS), str(tmp_path / "one"),
                             *overrides], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    one = json.loads(single.stdout.strip().splitlines()[-1])

    chief, other = outs
    assert chief["step"] == other["step"] == one["step"] == 8
    # Both workers hold the same model; only the chief wrote the run folder.
    assert chief["g_l1_loss"] == other["g_l1_loss"]
    run = Path(chief["run_dir"])
    assert other["run_dir"] == chief["run_dir"] and (run / "translator.keras").is_file()
    # The other worker wrote into a scratch folder of its own, removed when it ended.
    assert (scratch.is_dir() and not list(scratch.iterdir())), list(scratch.iterdir())
    # Two workers, one replica each, average gradients over the same global batch as one
    # process (equal up to summation order, as for mirrored above).
    for key in ("g_l1_loss", "val_l1"):
        assert abs(chief[key] - one[key]) <= 2e-2 * abs(one[key]), (key, chief, one)


def test_multi_worker_without_tf_config_says_what_to_set(tmp_path, monkeypatch):
    import pytest

    from kstyle.errors import RecipeError
    from kstyle.training.distribute import worker_role

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(RecipeError, match=r"TF_CONFIG is not set.*\"cluster\""):
        worker_role()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, '
                                    '"task": {"type": "worker", "index": 3}}')
    with pytest.raises(RecipeError, match="not usable .*worker 3"):
        worker_role()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:1"]}, '
                                    '"task": {"type": "worker", "index": 1}}')
    assert worker_role() == (1, False)


def _start_workers(out, *sets):
    """Two `kstyle fit` workers of one tiny multi-worker run on localhost."""
    sets = [*TINY_SETS, f'train.out_dir="{out}"', "train.distribute=multi_worker", *sets]
    ports = [_free_port(), _free_port()]
    workers = []
    for index in (0, 1):
        config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                  "task": {"type": "worker", "index": index}}
        command = [sys.executable, "-c", "from kstyle.cli import run; run()", "fit", "--quiet",
                   str(TESTS.parent / "recipes" / "quickstart.toml"),
                   *[a for item in sets for a in ("--set", item)]]
        workers.append(subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "TF_CONFIG": json.dumps(config)}))
    return workers


def _wait_past(out, step, workers, timeout=300):
    """Until the chief has logged a step after ``step``."""
    import time

    log = out / "steps.csv"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert all(w.poll() is None for w in workers), [w.communicate()[0] for w in workers]
        rows = log.read_text().splitlines()[1:] if log.is_file() else []
        if rows and int(rows[-1].split(",")[0]) > step:
            return
        time.sleep(0.2)
    raise AssertionError("the workers logged no step in time")


# A tiny run, long enough to be stopped on the way (400 steps of ~50 ms).
TINY_SETS = [*TINY, "train.epochs=1", "train.steps_per_epoch=400", "train.checkpoint_every=50"]


@pytest.mark.slow
def test_one_preempted_worker_stops_the_cluster_after_the_same_step(tmp_path):
    import signal

    out = tmp_path / "run"
    # SIGTERM to the non-chief: both finish the step, the chief saves it, both exit 143.
    workers = _start_workers(out)
    _wait_past(out, 20, workers)
    workers[1].send_signal(signal.SIGTERM)
    chief, other = (w.communicate(timeout=120)[0] for w in workers)
    assert [w.returncode for w in workers] == [143, 143], (chief, other)
    step = int(other.split("Stopped by SIGTERM at step ")[1].split(";")[0])
    assert f"Stopped by another worker's stop signal at step {step}; saved " \
           f"{out / 'checkpoints' / f'step_{step:08d}'}." in chief
    assert (out / "checkpoints" / f"step_{step:08d}" / "state.json").is_file()

    # SIGKILL to the non-chief: the chief cannot go on; it says so and exits 75.
    workers = _start_workers(out)
    _wait_past(out, step + 60, workers)
    workers[1].kill()
    chief = workers[0].communicate(timeout=180)[0]
    workers[1].wait()
    assert workers[0].returncode == 75, chief
    kept = sorted((out / "checkpoints").glob("step_*"))[-1]
    assert "Error: worker 0: another worker of the cluster stopped answering at step " in chief
    assert f"they resume from the chief's last checkpoint, {kept} (step " in chief

    # Both started again: they resume from that checkpoint and finish.
    workers = _start_workers(out)
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    assert f"Resuming {out} at step {int(kept.name.split('_')[1])}" in outputs[0]
    assert "Done in" in outputs[0] and "Worker 1 done" in outputs[1]
