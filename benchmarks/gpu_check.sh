#!/usr/bin/env bash
# GPU check, under 5 minutes on one CUDA GPU: the training-throughput table on CUDA in float32
# and bf16, and the rolling-prediction rate next to the bare forward pass.
# Run from the repository root after installing lstmcli with a CUDA build of torch:
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}")
PY
python benchmarks/train_throughput.py --device cuda --rows 400000 --repeats 3
python benchmarks/train_throughput.py --device cuda --rows 400000 --repeats 3 --precision bf16
python - <<'PY'
# lstmcli train end to end on CUDA: the device is used and the checkpoint loads on the CPU.
import subprocess, sys, tempfile, json, pathlib
out = pathlib.Path(tempfile.mkdtemp()) / "run"
subprocess.run([sys.executable, "-m", "lstmcli", "train", "-c", "configs/quickstart.yaml",
                "--set", "training.device=cuda", "--set", "training.epochs=5", "-o", str(out), "-q"],
               check=True)
metrics = json.loads((out / "metrics.json").read_text())
print("quickstart, 5 epochs on", metrics["device"], "rmse", round(metrics["model"]["rmse"], 4))
subprocess.run([sys.executable, "-m", "lstmcli", "predict", str(out), "--device", "cpu",
                "lstmcli/datasets/co2_weekly.csv"], check=True)
PY
