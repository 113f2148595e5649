import threading
from typing import Any

import pytest
import torch

from guard_core.parallel import parallel_sum, sequential, side_by_side


def _branches(seen: list[int]):
    conv = torch.nn.Conv2d(3, 4, 3)
    torch.nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(0))

    def record(f):
        def branch(x):
            seen.append(threading.get_ident())
            return f(x)

        return branch

    return [
        record(lambda x: conv(x).square().flatten(1).mean(1)),
        record(lambda x: x.sin().flatten(1).sum(1)),
        record(lambda x: (x * x.flip(-1)).flatten(1).sum(1)),
    ]


def test_parallel_sum_equals_the_plain_sum_and_its_gradient_on_other_threads(two_threads):
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(1), requires_grad=True)
    seen: list[int] = []
    branches = _branches(seen)
    plain = torch.stack([f(x) for f in branches]).sum(0)
    (g_plain,) = torch.autograd.grad(plain.sum(), x)
    seen.clear()
    out = parallel_sum(x, branches)
    (g,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(out, plain)
    torch.testing.assert_close(g, g_plain)
    assert threading.get_ident() not in seen and len(seen) == 3
    assert torch.get_num_threads() == 2  # the caller gets its threads back


class _RecordBackward(torch.autograd.Function):
    """The identity, whose backward notes the thread it ran on."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, seen: list[int]) -> torch.Tensor:
        ctx.seen = seen
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        ctx.seen.append(threading.get_ident())
        return grad, None


def test_one_element_branches_take_their_gradient_in_the_forward_jobs(two_threads):
    x = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(2), requires_grad=True)
    branches = _branches([])
    backward_threads: list[int] = []
    recorded = [lambda v, f=f: f(_RecordBackward.apply(v, backward_threads)) for f in branches]
    out = parallel_sum(x, recorded)
    assert len(backward_threads) == 3 and threading.get_ident() not in backward_threads  # before any backward call
    (g,) = torch.autograd.grad(out * 2.5, x)  # backward scales by the caller's gradient
    (g_plain,) = torch.autograd.grad(torch.stack([f(x) for f in branches]).sum(0) * 2.5, x)
    torch.testing.assert_close(g, g_plain)
    assert len(backward_threads) == 3  # nothing left to walk


def test_parallel_sum_runs_in_place_without_a_gradient_or_when_asked(two_threads):
    x = torch.rand(2, 3, 9, 9, requires_grad=True)
    seen: list[int] = []
    branches = _branches(seen)
    with torch.no_grad():
        parallel_sum(x, branches)
    with sequential():
        out = parallel_sum(x, branches)
    assert out.grad_fn is not None and set(seen) == {threading.get_ident()}


def test_a_failing_branch_raises_in_the_caller_and_restores_its_threads(two_threads):
    x = torch.rand(4, requires_grad=True)

    def broken(v):
        raise ValueError("branch failed")

    with pytest.raises(ValueError, match="branch failed"):
        parallel_sum(x, [lambda v: v * 2, broken])
    assert torch.get_num_threads() == 2


def test_a_forked_child_sums_in_place(two_threads):
    import multiprocessing

    x = torch.rand(4, requires_grad=True)
    parallel_sum(x, [lambda v: v * 2, lambda v: v * 3]).sum().backward()  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_child_gradient).get(timeout=60) == [5.0, 5.0, 5.0, 5.0]


def _child_gradient() -> list[float]:
    x = torch.ones(4, requires_grad=True)
    out = parallel_sum(x, [lambda v: v * 2, lambda v: v * 3])
    assert type(out.grad_fn).__name__ != "_BranchesBackward"  # no threads started in the child
    (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.tolist()


def test_side_by_side_runs_each_job_single_threaded_on_the_cores_and_keeps_their_order(two_threads):
    def job(k: int):
        return lambda: (k, threading.get_ident(), torch.get_num_threads())

    results = side_by_side([job(k) for k in range(3)])
    assert [k for k, *_ in results] == [0, 1, 2]
    assert all(t != threading.get_ident() and n == 1 for _, t, n in results)
    assert torch.get_num_threads() == 2
    with sequential():
        assert {t for _, t, _ in side_by_side([job(k) for k in range(2)])} == {threading.get_ident()}


def test_branch_gradients_are_added_in_order_as_a_stacked_sum_adds_them():
    from guard_core.parallel import _total

    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(1, 3, 40, 40, generator=g) * 10.0**k for k in range(3)]
    keep = [t.clone() for t in grads]
    assert torch.equal(_total(grads), torch.stack(grads).sum(0))
    assert all(torch.equal(a, b) for a, b in zip(grads, keep))  # the branches' gradients are not written to
