#!/usr/bin/env python
"""Time this package against a re-implementation of the Keras DDIM example, side by side.

One command, one process, the same data shapes and the same network for both sides:

    python benchmarks/run.py --size small                       # CPU, a couple of minutes
    python benchmarks/run.py --size full --backend jax          # the reference's sizes (GPU)
    python benchmarks/run.py --size full --variants default,bf16+bs256+spe8

It measures

* training: images/s of the example's hand-written ``train_step`` (``reference_ddim.py``)
  and of ``DiffusionModel.fit`` (``ours``), in one or more *variants* of our speed options;
* sampling: images/s of the example's eager Python loop and of our compiled loop
  (``DiffusionModel.generate``) on the same EMA weights and initial noise, the largest
  pixel difference between their samples, and the one-off compile time;
* with ``--size small``, the interactive sampler: seconds for a new slider setting
  (a 2x3 grid at 20 steps, smoke model) and for a cached one;

and prints a table, then one JSON line with every figure. Peak memory is the process's
peak resident memory during each phase on a CPU (``VmHWM``, reset between phases where
Linux allows, otherwise ``ru_maxrss``), and the device's peak allocation on a GPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]

SIZES = {
    # The smoke preset's network and images: quick on a CPU.
    "small": dict(preset="smoke", train_batch=16, sample_batch=16, train_steps=20, repeats=3),
    # The reference's defaults: 64x64 images, widths 32-128, block depth 2, batch 64.
    "full": dict(preset=None, train_batch=64, sample_batch=None, train_steps=None, repeats=2),
}
VARIANT_HELP = ("comma-separated variants of our training, each a '+'-joined set of options: default, "
                "xla (TensorFlow: jit_compile=True), bf16 (mixed_bfloat16), fp16 (mixed_float16 with loss "
                "scaling), spe<N> (steps_per_execution=N), bs<N> (batch size N)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--variants", default=None, help=VARIANT_HELP)
    parser.add_argument("--train-steps", type=int, default=None, help="timed training steps per repeat")
    parser.add_argument("--sample-batch", type=int, default=None, help="images per sampling call")
    parser.add_argument("--diffusion-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (the median is reported)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--torch-compile", action="store_true",
                        help="torch: also time sampling with torch.compile of the network")
    parser.add_argument("--checkpoint", default=None, help="sample with these trained weights (a checkpoint folder)")
    args = parser.parse_args(argv)
    for name in ("train_steps", "sample_batch", "diffusion_steps", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    return args


# --------------------------------------------------------------------------- helpers
class PeakMemory:
    """Peak memory of one phase: device allocation on a GPU, resident memory on a CPU."""

    def __init__(self, backend: str, accelerator: bool):
        self.backend, self.accelerator = backend, accelerator
        self.peak_mb: float | None = None
        self.scope = ""

    def __enter__(self):
        self.start_mb = None
        if self.accelerator:
            self._reset_device()
        else:
            self.start_mb = _status_mb("VmRSS:")
            self.scope = "phase" if _reset_rss_peak() else "process"
        return self

    def __exit__(self, *exc):
        self.peak_mb = self._device_peak() if self.accelerator else _rss_peak_mb()
        return False

    @property
    def growth_mb(self) -> float | None:
        """How far resident memory rose above its level at the start of the phase (CPU)."""
        if self.start_mb is None or self.peak_mb is None:
            return None
        return max(self.peak_mb - self.start_mb, 0.0)

    def _reset_device(self) -> None:
        self.scope = "phase"
        if self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        elif self.backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self.scope = "process"  # JAX cannot reset its peak counter

    def _device_peak(self) -> float | None:
        try:
            if self.backend == "tensorflow":
                import tensorflow as tf

                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
            if self.backend == "torch":
                import torch

                return torch.cuda.max_memory_allocated() / 2**20
            import jax

            return jax.devices()[0].memory_stats()["peak_bytes_in_use"] / 2**20
        except Exception:  # a backend without memory statistics: report nothing rather than guess
            return None


def _reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM, the peak resident set size (Linux >= 4.0)
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_peak_mb() -> float:
    peak = _status_mb("VmHWM:")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def describe_device(backend: str) -> tuple[str, bool]:
    """A one-line description of the machine and whether an accelerator is in use."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{cores} CPU core(s), {cpu}"
    accelerator = None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            accelerator = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
            accelerator = f"{len(gpus)} x {accelerator}"
    elif backend == "jax":
        import jax

        devices = [d for d in jax.devices() if d.platform != "cpu"]
        if devices:
            accelerator = f"{len(devices)} x {devices[0].device_kind}"
    else:
        import torch

        if torch.cuda.is_available():
            accelerator = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return (f"{accelerator} ({text})" if accelerator else text), accelerator is not None


def parse_variant(spec: str, base) -> tuple[str, Any]:
    """``'bf16+bs256'`` -> (name, config) for our model."""
    config = base
    for token in spec.split("+"):
        token = token.strip()
        if token in ("", "default"):
            continue
        if token == "xla":
            config = config.replace(jit_compile=True)
        elif token == "bf16":
            config = config.replace(mixed_precision="mixed_bfloat16")
        elif token == "fp16":
            config = config.replace(mixed_precision="mixed_float16")
        elif token.startswith("spe") and token[3:].isdigit():
            config = config.replace(steps_per_execution=int(token[3:]))
        elif token.startswith("bs") and token[2:].isdigit():
            config = config.replace(batch_size=int(token[2:]))
        else:
            raise SystemExit(f"unknown variant option {token!r} in {spec!r}; {VARIANT_HELP}")
    return spec.strip() or "default", config


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def make_step_timer():
    """A Keras callback that times the steps after the first one, excluding ``fit``'s set-up.

    ``fit`` spends a fixed time building its iterator and callbacks, which swamps a few
    short steps. The clock starts when the first step (or group of ``steps_per_execution``
    steps) has finished and stops when ``fit`` ends, after the last step's results were
    read back; reading ``self.model`` first forces JAX to finish the step it dispatched.
    """
    import keras

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = None
            self.calls = 0

        def on_train_batch_end(self, batch, logs=None):
            self.calls += 1
            if self.start is None:
                _ = self.model  # on JAX this synchronizes the training state
                self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self.start

    return StepTimer()


# -------------------------------------------------------------------------- phases
def benchmark_training(args, base, variants, images, backend, accelerator, log) -> dict:
    import keras
    from reference_ddim import ReferenceDiffusionModel

    from ddim_tutorial.core.model import DiffusionModel

    runs: dict[str, dict] = {}
    # Build and compile (warm up) everything first, then interleave the timed repeats so that
    # a busy machine slows every side alike.
    entries = [("reference", base, None)] + [(f"ours[{name}]", config, name) for name, config in variants]
    prepared = []
    for label, config, _ in entries:
        keras.utils.set_random_seed(0)
        if label == "reference":
            model = ReferenceDiffusionModel(config)
            model.normalizer.adapt(images[:256])
            model.compile(optimizer=keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                                           weight_decay=config.weight_decay),
                          loss=keras.losses.mean_absolute_error)
        else:
            model = DiffusionModel(config)
            model.adapt_normalizer(images[:256])
            model.compile()
        batch, group = config.batch_size, config.steps_per_execution
        steps = max(args.train_steps // group, 2) * group  # the first call is not timed
        data = _take(images, batch * steps)
        # The warm-up is one untimed run of the same length: it compiles, and it lets the
        # data pipeline and memory pools reach their steady state before anything is timed.
        with PeakMemory(backend, accelerator) as memory:
            compile_s = timed(functools.partial(model.fit, data, batch_size=batch, epochs=1, verbose=0, shuffle=False))
        log(f"  warm-up {label}: {compile_s:.1f} s (includes compilation)")
        prepared.append((label, model, batch, steps))
        runs[label] = dict(batch_size=batch, steps=steps, warm_up_s=round(compile_s, 2),
                           precision=config.mixed_precision or "float32", jit_compile=str(model.jit_compile),
                           steps_per_execution=group, seconds=[], peak_mb=None, memory_scope=memory.scope)
    for repeat in range(args.repeats):
        for label, model, batch, steps in prepared:
            data = _take(images, batch * steps)
            timer = make_step_timer()
            with PeakMemory(backend, accelerator) as memory:
                model.fit(data, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
            seconds = timer.seconds
            runs[label]["timed_steps"] = steps - steps // timer.calls  # all but the first call's steps
            runs[label]["seconds"].append(round(seconds, 3))
            runs[label]["peak_mb"] = _max(runs[label]["peak_mb"], memory.peak_mb)
            runs[label]["peak_growth_mb"] = _max(runs[label].get("peak_growth_mb"), memory.growth_mb)
            log(f"  repeat {repeat + 1} {label}: {runs[label]['timed_steps']} steps in {seconds:.2f} s")
    for run in runs.values():
        run["images_per_s"] = round(run["batch_size"] * run["timed_steps"] / median(run["seconds"]), 2)
    reference = runs["reference"]["images_per_s"]
    for run in runs.values():
        run["ratio_vs_reference"] = round(run["images_per_s"] / reference, 3)
    return runs


def benchmark_sampling(args, config, images, backend, accelerator, log) -> dict:
    import keras
    import numpy as np
    from reference_ddim import reference_reverse_diffusion

    from ddim_tutorial.core.model import DiffusionModel
    from ddim_tutorial.core.sampling import CompiledSampler

    keras.utils.set_random_seed(0)
    if args.checkpoint:
        from ddim_tutorial.training.checkpoints import load_checkpoint

        model = load_checkpoint(args.checkpoint)
        config = model.config
    else:
        model = DiffusionModel(config)
        model.adapt_normalizer(images[:256])
        # A few training steps so the weights (copied to the EMA twin) predict more than zeros.
        model.compile()
        batch = config.batch_size
        model.fit(images[:batch * 4], batch_size=batch, epochs=1, verbose=0, shuffle=False)
        model.ema_network.set_weights(model.network.get_weights())
    batch, steps = args.sample_batch, args.diffusion_steps
    noise = model.initial_noise(batch, seed=0)

    def reference():
        pred = reference_reverse_diffusion(model.ema_network, noise, steps, config.min_signal_rate,
                                           config.max_signal_rate)
        return np.asarray(keras.ops.convert_to_numpy(model.denormalize(pred)))

    def ours():
        return np.asarray(keras.ops.convert_to_numpy(model.generate(batch, steps, initial_noise=noise)))

    candidates: list[tuple[str, Callable[[], Any]]] = [("reference (eager loop)", reference),
                                                       (f"ours ({model.sampler.mode})", ours)]
    if backend == "tensorflow":
        other = CompiledSampler(model, jit_compile=not model.sampler.jit_compile)
        candidates.append((f"ours ({other.mode})",
                           lambda: np.asarray(keras.ops.convert_to_numpy(other(noise, steps)))))
    if backend == "torch" and args.torch_compile:
        candidates.append(("ours (torch.compile network)", _torch_compiled_sampler(model, noise, steps)))
    rows: dict[str, dict] = {}
    outputs = {}
    failed = {}
    for label, function in list(candidates):
        start = time.perf_counter()
        try:
            with PeakMemory(backend, accelerator) as memory:
                outputs[label] = function()
        except Exception as err:  # an optional compiler that cannot handle the network: report it
            failed[label] = dict(error=f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200]}",
                                 seconds_until_failure=round(time.perf_counter() - start, 2))
            candidates.remove((label, function))
            log(f"  {label} failed after {failed[label]['seconds_until_failure']} s: {failed[label]['error']}")
            continue
        first = time.perf_counter() - start
        rows[label] = dict(first_call_s=round(first, 2), seconds=[], peak_mb=memory.peak_mb,
                           memory_scope=memory.scope)
        log(f"  first call {label}: {first:.2f} s")
    for repeat in range(args.repeats):
        for label, function in candidates:
            with PeakMemory(backend, accelerator) as memory:
                seconds = timed(function)
            rows[label]["seconds"].append(round(seconds, 3))
            rows[label]["peak_mb"] = _max(rows[label]["peak_mb"], memory.peak_mb)
            rows[label]["peak_growth_mb"] = _max(rows[label].get("peak_growth_mb"), memory.growth_mb)
            log(f"  repeat {repeat + 1} {label}: {seconds:.2f} s")
    expected = outputs["reference (eager loop)"]
    reference_speed = batch / median(rows["reference (eager loop)"]["seconds"])
    for label, row in rows.items():
        row["images_per_s"] = round(batch / median(row["seconds"]), 3)
        row["ratio_vs_reference"] = round(row["images_per_s"] / reference_speed, 3)
        row["max_abs_diff_vs_reference"] = float(np.abs(outputs[label] - expected).max())
    return dict(batch=batch, diffusion_steps=steps, sample_std=float(expected.std()), rows=rows, failed=failed)


def _torch_compiled_sampler(model, noise, steps):
    import torch

    from ddim_tutorial.core.predictions import make_denoiser
    from ddim_tutorial.core.sampling import sample
    from ddim_tutorial.core.schedule import path_parameters

    network = model.ema_network
    denoise = make_denoiser(torch.compile(lambda inputs: network(inputs, training=False)))
    start, span = path_parameters(model.config.min_signal_rate, model.config.max_signal_rate)

    def run():
        import keras
        import numpy as np

        # no_grad, not inference_mode: dynamo's guards fail on inference tensors (torch 2.13).
        with torch.no_grad():
            pred = sample(denoise, noise, steps, torch.tensor(start), torch.tensor(span))
            return np.asarray(keras.ops.convert_to_numpy(model.denormalize(pred)))

    return run


def benchmark_interactive(images, backend, log) -> dict:
    """The slider experience on the smoke model: the sampler explorer's 2x3 grid at 20 steps.

    Each new setting is what a student waits for after releasing a slider and pressing
    **sample**: sampling through the model's compiled sampler, drawing and encoding the grid.
    """
    import keras

    from ddim_tutorial.config import DDIMConfig
    from ddim_tutorial.core.model import DiffusionModel
    from ddim_tutorial.teaching import widgets

    keras.utils.set_random_seed(0)
    model = DiffusionModel(DDIMConfig.preset("smoke"))
    model.adapt_normalizer(images[:256])
    start = time.perf_counter()
    explorer = widgets.sampler_explorer(model, num_images=6, steps=20, live=False)  # computes the default once
    warm_up = time.perf_counter() - start
    controls = explorer.controls

    def new_setting(**values):
        def run():
            for name, value in values.items():
                controls[name].value = value
            controls["sample"].click()
        return run

    new_settings = [timed(new_setting(eta=0.5, seed=1)), timed(new_setting(eta=0.0, steps=15)),
                    timed(new_setting(**{"min signal": 0.05}))]
    cached = timed(new_setting(seed=0, steps=20, **{"min signal": model.config.min_signal_rate}))  # the first one
    if explorer.computations != 4 or explorer.cache_hits < 1:
        raise RuntimeError(f"the slider benchmark expected 4 computations and a cache hit, got "
                           f"{explorer.computations} and {explorer.cache_hits}")
    log(f"  interactive: first picture (compiles) {warm_up:.2f} s, new settings "
        f"{', '.join(f'{s:.2f}' for s in new_settings)} s, cached {cached * 1000:.2f} ms")
    return dict(warm_up_s=round(warm_up, 2), new_setting_s=[round(s, 3) for s in new_settings],
                cached_ms=round(cached * 1000, 3), grid="2x3", diffusion_steps=20)


def _take(images, count):
    """The first ``count`` images, repeating the array if it is shorter."""
    import numpy as np

    if len(images) >= count:
        return images[:count]
    repeats = -(-count // len(images))
    return np.concatenate([images] * repeats)[:count]


def _max(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.backend:
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
            raise SystemExit("--backend must be chosen before Keras is imported; run this script directly.")
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for path in (str(REPO_ROOT), str(Path(__file__).resolve().parent)):
        if path not in sys.path:
            sys.path.insert(0, path)

    import keras
    import numpy as np

    from ddim_tutorial.config import DDIMConfig

    backend = keras.backend.backend()
    device, accelerator = describe_device(backend)
    size = SIZES[args.size]
    base = (DDIMConfig.preset(size["preset"]) if size["preset"] else DDIMConfig())
    base = base.replace(batch_size=size["train_batch"], validation_kid=False, kid_weights=None, seed=0)
    args.train_steps = args.train_steps or size["train_steps"] or (50 if accelerator else 4)
    args.sample_batch = args.sample_batch or size["sample_batch"] or (64 if accelerator else 16)
    args.repeats = args.repeats or size["repeats"]
    # XLA training on a CPU measured 3-4x slower than TensorFlow's graph (and ~1 min to
    # compile), so it is not a default there; ask for it with --variants default,xla.
    # On a GPU Keras already turns XLA on for TensorFlow and JAX.
    default_variants = "default,bf16+bs256" if accelerator and args.size == "full" else "default"
    variants = [parse_variant(spec, base) for spec in (args.variants or default_variants).split(",")]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"ddim-tutorial benchmark: size={args.size}, backend={backend}, keras {keras.__version__}, {device}")
    largest_batch = max([base.batch_size] + [config.batch_size for _, config in variants])
    count = max(largest_batch * 2, 256)
    images = np.random.default_rng(0).uniform(size=(count, base.image_size, base.image_size, 3)).astype("float32")
    result: dict[str, Any] = dict(benchmark="ddim-tutorial", size=args.size, backend=backend,
                                  keras=keras.__version__, device=device, image_size=base.image_size,
                                  widths=list(base.widths), block_depth=base.block_depth)
    started = time.perf_counter()
    if not args.skip_train:
        log("training ...")
        result["train"] = benchmark_training(args, base, variants, images, backend, accelerator, log)
    if not args.skip_sample:
        log("sampling ...")
        result["sampling"] = benchmark_sampling(args, base, images, backend, accelerator, log)
        if args.size == "small":
            result["interactive"] = benchmark_interactive(images, backend, log)
    result["total_s"] = round(time.perf_counter() - started, 1)
    result["peak_rss_mb_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print_table(result)
    print(json.dumps(result, sort_keys=True))
    return result


def print_table(result: dict) -> None:
    print(f"\nddim-tutorial benchmark  size={result['size']}  backend={result['backend']}  "
          f"keras {result['keras']}  {result['device']}")
    header = (f"{'phase':<10} {'implementation':<34} {'images/s':>10} {'vs ref':>7} {'peak MB':>9} "
              f"{'+MB':>7}  notes")
    print(header)
    print("-" * len(header))
    for label, run in result.get("train", {}).items():
        notes = (f"batch {run['batch_size']}, {run['precision']}, jit={run['jit_compile']}, "
                 f"spe={run['steps_per_execution']}, warm-up {run['warm_up_s']} s")
        print(f"{'train':<10} {label:<34} {run['images_per_s']:>10.2f} {run['ratio_vs_reference']:>6.2f}x "
              f"{_fmt(run['peak_mb']):>9} {_fmt(run.get('peak_growth_mb')):>7}  {notes}")
    sampling = result.get("sampling")
    if sampling:
        for label, row in sampling["rows"].items():
            notes = (f"batch {sampling['batch']}, {sampling['diffusion_steps']} steps, first call "
                     f"{row['first_call_s']} s, max|diff| {row['max_abs_diff_vs_reference']:.1e}")
            print(f"{'sample':<10} {label:<34} {row['images_per_s']:>10.2f} {row['ratio_vs_reference']:>6.2f}x "
                  f"{_fmt(row['peak_mb']):>9} {_fmt(row.get('peak_growth_mb')):>7}  {notes}")
    for label, failure in (sampling or {}).get("failed", {}).items():
        print(f"{'sample':<10} {label:<34} {'failed':>10}  after {failure['seconds_until_failure']} s: "
              f"{failure['error'][:90]}")
    interactive = result.get("interactive")
    if interactive:
        print(f"{'slider':<10} {'new setting, 2x3 grid, 20 steps':<34} "
              f"{max(interactive['new_setting_s']):>9.2f}s {'':>7} {'':>9} {'':>7}  "
              f"warm-up {interactive['warm_up_s']} s, "
              f"cached {interactive['cached_ms']} ms")
    print(f"total {result['total_s']} s. 'peak MB': peak resident memory (CPU) or device memory (GPU) in the "
          "phase; '+MB': its rise above the phase's start (CPU). JAX's GPU peak cannot be reset: process-wide.")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
