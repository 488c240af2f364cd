"""One forecast in process: onnxruntime on the exported file against the PyTorch path.

Trains the quick start for a few epochs (or takes `--run`), exports it, then times one forecast
of one raw window (batch 1, original units in, original units out) with onnxruntime and with
the PyTorch forecaster module (the same computation: scaling, network, inverse), alternating,
`--repeats` x 200 calls each; prints the medians and their ratio. Then the whole command
`lstmcli predict model.onnx` (which never imports torch) against `lstmcli predict RUN`, start-up
included, and the installed size of what a consumer of the file needs (onnxruntime and numpy)
next to torch's.

  python benchmarks/onnx.py
  python benchmarks/onnx.py --run runs/quickstart
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def installed_mib(package: str) -> float:
    files = metadata.distribution(package).files or []
    return sum((f.locate().stat().st_size for f in files if f.locate().exists()), 0) / 2**20


def median_seconds(call, n: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    run = args.run
    if run is None:
        run = Path(tempfile.mkdtemp()) / "run"
        subprocess.run([sys.executable, "-m", "lstmcli", "train", "-c", "configs/quickstart.yaml",
                        "--set", "training.epochs=3", "--set", "training.ensemble=1", "-o",
                        str(run), "-q"], check=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "lstmcli", "export", str(run), "-q"], check=True)
    import onnxruntime

    from lstmcli.model.checkpoint import load_checkpoint
    from lstmcli.use.export import example_inputs

    checkpoint = load_checkpoint(run)
    torch.set_num_threads(1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(run / "model.onnx"), options)
    module = checkpoint.fitted("cpu").backend.module
    inputs = example_inputs(checkpoint, batch=1)
    feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}

    def with_torch() -> None:
        with torch.inference_mode():
            module(*inputs)

    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(median_seconds(lambda: session.run(None, feed), 200))
        theirs.append(median_seconds(with_torch, 200))
    onnx_ms, torch_ms = np.median(ours) * 1e3, np.median(theirs) * 1e3
    lookback = checkpoint.config.data.lookback
    print(f"one forecast (batch 1, lookback {lookback}, horizon {checkpoint.config.data.horizon},"
          f" 1 thread): onnxruntime {onnx_ms:.3f} ms, PyTorch {torch_ms:.3f} ms, "
          f"ratio {onnx_ms / torch_ms:.2f}")  # fmt: skip
    # the whole command, start-up included: the ONNX file's path imports no torch
    data = str(checkpoint.config.data.path)
    commands = {
        "predict model.onnx": [sys.executable, "-m", "lstmcli", "predict", str(run / "model.onnx"),
                               data, "-q"],
        "predict RUN (torch)": [sys.executable, "-m", "lstmcli", "predict", str(run), data, "-q"],
    }  # fmt: skip
    walls = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls[name].append(time.perf_counter() - started)
    print("the whole command (median of " + str(args.repeats) + "): " + ", ".join(
        f"{name} {np.median(values):.2f} s" for name, values in walls.items()))  # fmt: skip
    runtime = installed_mib("onnxruntime") + installed_mib("numpy")
    print(f"installed: onnxruntime + numpy {runtime:.0f} MiB; torch {installed_mib('torch'):.0f} "
          f"MiB (CPU wheel)")  # fmt: skip


if __name__ == "__main__":
    main()
