"""Size and cost of a model: parameters, multiply-accumulates per face, CPU throughput."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import numpy as np

from fer_lib.backend import keras


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one input through the conv, depthwise and dense layers."""
    total = 0
    for layer in leaf_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            out_shape = layer.output.shape
            positions = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
            kernel = layer.kernel.shape
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                per_position = int(np.prod(kernel[:2])) * int(out_shape[-1])
            else:
                per_position = int(np.prod(kernel))
            total += positions * per_position
    return total


def leaf_layers(model):
    """The layers of `model` that are not models themselves, nested members and sub-models included."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def inference_images_per_second(model: keras.Model, batch_size: int = 256, batches: int = 8, repeats: int = 3) -> float:
    """Median faces per second classified on this machine, in batches, after a warm-up."""
    faces = np.random.default_rng(0).integers(0, 256, (batch_size, *model.input_shape[1:])).astype("float32")
    model.predict_on_batch(faces)  # warm-up: graph tracing
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(batches):
            model.predict_on_batch(faces)
        rates.append(batch_size * batches / (time.perf_counter() - started))
    return float(statistics.median(rates))


def cpu_description() -> str:
    """The CPU's model name and core count, e.g. 'AMD EPYC 9R14, 2 cores'."""
    import os

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def training_hardware() -> str:
    """What trains: the accelerator Keras' JAX or PyTorch backend computes on (e.g. 'NVIDIA H200'), else the CPU."""
    import keras

    name = None
    try:
        if keras.backend.backend() == "jax":
            import jax

            device = jax.devices()[0]
            name = device.device_kind if device.platform != "cpu" else None
        elif keras.backend.backend() == "torch":
            import torch

            name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # no usable accelerator: the CPU is what trains
        name = None
    return f"{name} (GPU), beside {cpu_description()}" if name else cpu_description()
