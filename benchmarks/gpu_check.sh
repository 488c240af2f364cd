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
# Several GPUs: the same quick start with one process per GPU (torchrun, nccl), its metrics
# next to one GPU's (they should agree up to float32 summation order).
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -ge 2 ]; then
  python - "$GPUS" <<'PY'
import json, pathlib, subprocess, sys, tempfile
gpus = int(sys.argv[1])
folder = pathlib.Path(tempfile.mkdtemp())
args = ["-m", "lstmcli", "train", "-c", "configs/quickstart.yaml", "-q",
        "--set", "training.device=cuda", "--set", "training.epochs=5", "--set", "training.ensemble=1"]
subprocess.run([sys.executable, *args, "-o", str(folder / "one")], check=True)
subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={gpus}", *args, "-o", str(folder / "many")], check=True)
one, many = (json.loads((folder / n / "metrics.json").read_text()) for n in ("one", "many"))
print(f"1 GPU: rmse {one['model']['rmse']:.4f}, {one['training_seconds']:.1f}s; "
      f"{gpus} GPUs (DDP): rmse {many['model']['rmse']:.4f}, {many['training_seconds']:.1f}s")
PY
else
  echo "one GPU: the multi-GPU section needs two or more"
fi
