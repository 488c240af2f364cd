"""Start-up time: keeping torch.optim from importing the compiler lstmcli never uses.

torch.optim guards its optimizers against torch.compile: `__init__`'s step patching,
`zero_grad`, `state_dict` and `load_state_dict` are wrapped by a decorator that imports
torch._dynamo on its first call, and every `step` runs inside a wrapper that imports it to
mark graph breaks. That import is about 2 seconds of every `lstmcli train` on a small machine,
a third of a short series' whole run. lstmcli never compiles, so the decorated methods are
marked as already wrapped (the decorator's own cache), and a step calls the optimizer's
update under `torch.no_grad()`, which is all the wrapper does outside compilation. Where
torch's wrappers look different (another torch version) nothing is bypassed and the import
happens as before.
"""

from __future__ import annotations

import inspect
import sys

import torch
from torch.optim import Optimizer

WRAPPED = ("_patch_step_function", "state_dict", "load_state_dict", "zero_grad", "add_param_group")
CACHE_ATTRIBUTE = "__dynamo_disable"  # where torch._compile's wrapper keeps its wrapped function


def skip_compiler_import() -> None:
    """Mark torch.optim.Optimizer's compiler-guarded methods as resolved (see the module's
    docstring); a no-op once torch._dynamo is imported, since the real guard is then cheap."""
    if "torch._dynamo" in sys.modules:
        return
    for name in WRAPPED:
        wrapper = getattr(torch.optim.Optimizer, name, None)
        function = getattr(wrapper, "__wrapped__", None)
        code = getattr(wrapper, "__code__", None)
        if function is None or code is None or code.co_filename != torch._compile.__file__:
            continue  # not torch._compile's lazy wrapper: leave it alone
        if getattr(function, CACHE_ATTRIBUTE, None) is None:
            setattr(function, CACHE_ATTRIBUTE, function)


def optimizer_step(optimizer: Optimizer) -> None:
    """`optimizer.step()`, without the compile guard's import of torch._dynamo: the update
    itself under no_grad, as the guard runs it for an optimizer that is not differentiable."""
    update = _plain_update(type(optimizer))
    if update is None or optimizer.defaults.get("differentiable") or "torch._dynamo" in sys.modules:
        optimizer.step()
        return
    with torch.no_grad():
        update(optimizer)


def _plain_update(kind: type) -> object | None:
    """The update under an optimizer class's step wrappers (the step hooks' wrapper, then the
    compile guard `_use_grad` of torch/optim/optimizer.py), or None where they differ."""
    hooks = kind.step
    guard = getattr(hooks, "__wrapped__", None)
    code = getattr(guard, "__code__", None)
    if code is None or code.co_name != "_use_grad":
        return None
    if code.co_filename != inspect.getfile(Optimizer):
        return None
    return getattr(guard, "__wrapped__", None)
