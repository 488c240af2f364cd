"""Choosing the torch device a config asks for, with a clear error when it is absent."""

from __future__ import annotations

import os

import torch

from lstmcli.config.fields import DEVICE_PATTERN
from lstmcli.errors import LstmcliError

AUTO_VARIABLE = "LSTMCLI_DEVICE"  # what `auto` picks (e.g. cpu: keep a shared GPU free)


def resolve_device(name: str) -> torch.device:
    """auto picks CUDA, then Apple MPS, then the CPU (or the device LSTMCLI_DEVICE names);
    an explicit absent device is an error."""
    if not DEVICE_PATTERN.match(name):
        raise LstmcliError(f"{name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps")
    pinned = os.environ.get(AUTO_VARIABLE, "auto").strip() or "auto"
    if name == "auto" and pinned != "auto":
        if not DEVICE_PATTERN.match(pinned):
            raise LstmcliError(
                f"{AUTO_VARIABLE}={pinned!r} is not a device name; use auto, cpu, cuda, cuda:N "
                "or mps"
            )
        name = pinned
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise LstmcliError("device 'mps' is not available on this machine; use cpu or auto")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise LstmcliError(
            f"device {name!r} is not available: torch sees no CUDA GPU; use cpu or auto"
        )
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise LstmcliError(
            f"device {name!r} is not available: this machine has {count} CUDA GPU(s)"
        )
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
