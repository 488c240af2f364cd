"""Device choice: `auto`, the LSTMCLI_DEVICE pin the test suite runs under, explicit names."""

from __future__ import annotations

import os

import pytest
import torch

from lstmcli.errors import LstmcliError
from lstmcli.run.device import AUTO_VARIABLE, resolve_device


@pytest.fixture
def a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one with a CUDA GPU, as far as choosing a device goes."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_tests_resolve_auto_to_the_cpu_even_with_a_gpu(a_gpu: None) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert os.environ[AUTO_VARIABLE] == "cpu"  # and the commands tests start inherit it


def test_the_variable_sets_what_auto_picks_and_nothing_else(
    a_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTO_VARIABLE, "auto")
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.delenv(AUTO_VARIABLE)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setenv(AUTO_VARIABLE, "cpu")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit device wins
    monkeypatch.setenv(AUTO_VARIABLE, "gpu")
    with pytest.raises(LstmcliError) as error:
        resolve_device("auto")
    assert str(error.value) == (
        "LSTMCLI_DEVICE='gpu' is not a device name; use auto, cpu, cuda, cuda:N or mps"
    )


@pytest.mark.cuda
def test_tests_marked_cuda_see_the_gpu() -> None:
    assert AUTO_VARIABLE not in os.environ
    assert resolve_device("auto") == torch.device("cuda")
    assert torch.ones(2, device=resolve_device("auto")).sum().item() == 2.0
