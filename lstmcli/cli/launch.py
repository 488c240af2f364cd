"""`lstmcli train --nproc N`: the same command line under torchrun on this machine.

It exits as a one-process train would: 0, 1, or 130 / 143 after Ctrl-C / SIGTERM (each rank
saves and stops after the same batch). torchrun runs in its own process group, so the signal
reaches it once, passed on from here; its own log lines and the traceback it prints for a
signal are left out of stderr (the workers' lines pass through).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

EXIT_ERROR = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
TORCHRUN_LOG = ("torch/distributed/elastic", "torch.distributed.elastic")


def relaunch_under_torchrun(nproc: int, argv: list[str]) -> int:
    """Run `lstmcli ARGV` (without --nproc) with `nproc` processes; return the exit code."""
    args = list(argv)
    for k, arg in enumerate(args):
        if arg == "--nproc":
            del args[k : k + 2]
            break
        if arg.startswith("--nproc="):
            del args[k]
            break
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "lstmcli", *args]  # fmt: skip
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    child = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            child.send_signal(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, forward)
    relay = threading.Thread(target=relay_worker_lines, args=(child.stderr,), daemon=True)
    relay.start()
    code = child.wait()
    relay.join(timeout=5)
    if received:
        return EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT
    return 0 if code == 0 else EXIT_ERROR


def relay_worker_lines(stream: object) -> None:
    """Copy the workers' stderr lines, leaving out torchrun's log lines, the traceback it
    prints for a signal it received and its failure summary between two rules of `=` (the
    worker said what failed in its `Error:` line; a traceback of anything else is kept)."""
    held: list[str] = []
    in_summary = False
    for line in stream:  # type: ignore[attr-defined]
        if set(line.strip()) == {"="}:
            in_summary = not in_summary
            continue
        if in_summary:
            continue
        if held:
            held.append(line)
            if not line.startswith((" ", "\t", "Traceback")):  # the exception's own line
                if "SignalException" not in line and "ChildFailedError" not in line:
                    sys.stderr.writelines(held)
                held = []
            continue
        if line.startswith("Traceback (most recent call last)"):
            held = [line]
        elif not any(mark in line for mark in TORCHRUN_LOG):
            sys.stderr.write(line)
            sys.stderr.flush()
    sys.stderr.writelines(held)
