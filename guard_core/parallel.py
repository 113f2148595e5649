"""Independent differentiable branches of one input, run side by side on the CPU's cores.

An ensemble objective (photo_guard: one term per encoder) is a sum of functions of the same images that share
nothing but the input. Torch runs each convolution on every core, but small convolutions (a 112-px face) do not fill
two cores; one branch per core, each single-threaded, does. ``python benchmarks/objective_speed.py``: the DP2-VL
objective and its gradient on one face 129 -> 100 ms (×0.77), on two ×0.92, on five ×0.99 (a batch fills the cores
on its own, so photo_guard takes one photo's terms side by side and a batch's one after another). The autograd
graph is split at the input: each branch runs forward and backward on its own detached copy, and the input's gradient
is the sum of the branches'.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["parallel_sum", "sequential", "side_by_side"]

Branch = Callable[[Tensor], Tensor]
T = TypeVar("T")
_sequential: ContextVar[bool] = ContextVar("guard_core_sequential", default=False)


@contextmanager
def sequential() -> Iterator[None]:
    """Within this block :func:`parallel_sum` runs its branches one after another on every thread (the baseline in
    benchmarks, and a debugging aid)."""
    token = _sequential.set(True)
    try:
        yield
    finally:
        _sequential.reset(token)


def parallel_sum(x: Tensor, branches: Sequence[Branch], side_by_side: bool = True) -> Tensor:
    """``Σ_k branches[k](x)``, forward and backward on separate threads where that can help.

    Args:
        x: the shared input (any shape).
        branches: functions of ``x`` returning tensors of one shape (for example a per-sample loss ``[B]``).
        side_by_side: False for the plain sum (the caller knows its work fills the cores, e.g. a batch).
    Returns:
        the sum, differentiable with respect to ``x`` once (no gradient of the gradient). The plain sum on a GPU,
        with fewer than two branches or threads, when no gradient is recorded, inside :func:`sequential`, and in a
        forked child process.
    """
    threads = torch.get_num_threads()
    plain = not side_by_side or len(branches) < 2 or threads < 2 or x.device.type != "cpu"
    plain = plain or _sequential.get() or _forked
    if plain or not (torch.is_grad_enabled() and x.requires_grad):
        return torch.stack([f(x) for f in branches]).sum(0)
    out: Tensor = _Branches.apply(x, tuple(branches), threads)
    return out


def side_by_side(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Each job's result, the jobs run on the cores' threads (each single-threaded), as :func:`parallel_sum` runs its
    branches; one after another where it would run them so (fewer than two jobs or threads, inside
    :func:`sequential`, in a forked child). For CPU work too small to fill the cores on its own, e.g. one photo through
    each encoder. Grad and inference modes are per thread: a job that needs one sets it itself."""
    if len(jobs) < 2 or torch.get_num_threads() < 2 or _sequential.get() or _forked:
        return [job() for job in jobs]
    return _on_threads(list(jobs), torch.get_num_threads())


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="guard-branch")


def _in_forked_child() -> None:
    # A forked child has none of the parent's threads, and torch's OpenMP runtime is not safe to use from new threads
    # there (a child's branch threads crashed in CI): a forked child sums in place.
    global _forked
    _forked = True


_forked = False
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_forked_child)


def _on_threads(jobs: list[Callable[[], T]], threads: int) -> list[T]:
    """Run ``jobs`` on ``min(len(jobs), threads)`` workers that share the cores, then give the caller its cores back."""
    workers = min(len(jobs), threads)
    per_worker = max(1, threads // workers)

    def run(job: Callable[[], T]) -> T:
        torch.set_num_threads(per_worker)  # a worker's own thread count: torch keeps it per thread
        return job()

    try:
        return [f.result() for f in [_pool(workers).submit(run, job) for job in jobs]]
    finally:
        torch.set_num_threads(threads)


class _Branches(torch.autograd.Function):
    """Each branch's graph hangs off its own leaf copy of the input; backward sums the leaves' gradients.

    A branch whose output has one element (one photo's loss) takes its gradient in the job that ran its forward:
    ``d(g·y)/dx = g·dy/dx`` for a scalar ``y``, so backward only scales the sum. The threads then meet once per call
    instead of twice and neither waits at the forward's end for the slower branch (one face's objective and gradient
    96.0 -> 91.0 ms against the two-phase way, interleaved in one process); the gradient is the same to the last bit.
    The cost: a caller that never asks for the gradient has paid for it.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, branches: tuple[Branch, ...], threads: int) -> Tensor:
        def forward_one(f: Branch) -> Callable[[], tuple[Tensor, Tensor]]:
            def job() -> tuple[Tensor, Tensor]:
                leaf = x.detach().requires_grad_(True)
                with torch.enable_grad():  # grad mode is per thread; autograd.Function.forward runs without it
                    out = f(leaf)
                if out.numel() == 1:
                    return out.detach(), torch.autograd.grad(out, leaf)[0]  # (value, its gradient)
                return out, leaf  # (graph, its leaf): backward walks it

            return job

        ctx.results = _on_threads([forward_one(f) for f in branches], threads)
        ctx.threads = threads
        return torch.stack([out.detach() for out, _ in ctx.results]).sum(0)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        results = ctx.results
        del ctx.results  # the branches' graphs go with their last use
        if results[0][0].grad_fn is None:  # gradients taken in the forward jobs
            return _total([g for _, g in results]).mul_(grad.reshape(())), None, None

        def backward_one(out: Tensor, leaf: Tensor) -> Callable[[], Tensor]:
            return lambda: torch.autograd.grad(out, leaf, grad)[0]

        grads = _on_threads([backward_one(out, leaf) for out, leaf in results], ctx.threads)
        return _total(grads), None, None


def _total(tensors: list[Tensor]) -> Tensor:
    """``Σ tensors`` in a new tensor, added in order: the same bits as ``torch.stack(tensors).sum(0)``, without the
    stacked copy (1.4 ms of a step's main thread for one face's three gradients, against 0.06 ms added)."""
    total = tensors[0].clone()
    for t in tensors[1:]:
        total += t
    return total
