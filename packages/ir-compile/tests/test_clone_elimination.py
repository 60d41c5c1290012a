"""CloneEliminationPass: each rule that keeps a clone, and removals that keep the results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from ir_compile.passes.clone_elimination import CloneEliminationPass, may_overlap
from ir_compile.testing import ir_graph, run_graph


def clones(gm: torch.fx.GraphModule) -> list[str]:
    return [
        n.name for n in gm.graph.find_nodes(op="call_function", target=torch.ops.aten.clone.default)
    ]


def eliminate(
    fn: Callable[..., Any], *args: Tensor, donated: tuple[int, ...] = ()
) -> tuple[torch.fx.GraphModule, CloneEliminationPass]:
    gm = ir_graph(fn, *args)
    placeholders = list(gm.graph.find_nodes(op="placeholder"))
    elimination = CloneEliminationPass()
    elimination(gm.graph, {placeholders[i] for i in donated})
    return gm, elimination


def x_and_y() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)


def check_same_results(gm: torch.fx.GraphModule, fn: Callable[..., Any], *args: Tensor) -> None:
    expected = fn(*[a.clone() for a in args])
    got = run_graph(gm, *[a.clone() for a in args])
    torch.testing.assert_close(got, expected)


def test_a_written_clone_of_an_unread_intermediate_is_removed() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        c = h.clone()
        c.mul_(2)
        return c + y

    gm, elimination = eliminate(fn, *x_and_y())
    assert len(elimination.removed) == 1 and elimination.kept == {}
    assert clones(gm) == []
    check_same_results(gm, fn, *x_and_y())


def test_kept_when_the_original_is_read_after_the_write() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        c = h.clone()
        c.mul_(2)
        return c + h

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["read after write"]
    check_same_results(gm, fn, *x_and_y())


def test_kept_when_a_view_of_the_original_is_read_after_the_write() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        view = h[:4]
        c = h.clone()
        c.mul_(2)
        return c, view * 3

    _, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["read after write"]


def test_a_disjoint_view_read_after_the_write_does_not_keep_it() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        top, bottom = h[:4], h[4:]
        c = top.clone()
        c.mul_(2)
        return c + 0, bottom * 3

    gm, elimination = eliminate(fn, *x_and_y())
    assert len(elimination.removed) == 1
    check_same_results(gm, fn, *x_and_y())


def test_reads_before_the_write_are_fine() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        c = h.clone()
        before = h * 5
        c.mul_(2)
        return c + before

    gm, elimination = eliminate(fn, *x_and_y())
    assert len(elimination.removed) == 1
    check_same_results(gm, fn, *x_and_y())


def test_kept_when_the_writer_also_reads_the_original() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        c = h.clone()
        c.add_(h)
        return c

    _, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["read after write"]


def test_kept_for_an_undonated_graph_input_and_removed_for_a_donated_one() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        c = x.clone()
        c.mul_(2)
        return c + y

    _, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["undonated graph input"]

    gm, elimination = eliminate(fn, *x_and_y(), donated=(0,))
    assert len(elimination.removed) == 1
    x, y = x_and_y()
    expected = fn(x.clone(), y)
    torch.testing.assert_close(run_graph(gm, x, y), expected)
    torch.testing.assert_close(x, expected - y)  # the donated input was written


def test_kept_for_a_view_of_an_undonated_graph_input() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        c = x[2:].clone()
        c.mul_(2)
        return c

    _, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["undonated graph input"]


def test_kept_when_a_snapshot_of_an_input_is_returned() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        c = x.clone()
        c.mul_(2)
        return c

    _, elimination = eliminate(fn, *x_and_y(), donated=(0,))
    assert list(elimination.kept.values()) == ["snapshot returned"]


@pytest.mark.parametrize(
    "make_clone",
    [
        pytest.param(lambda h: h[..., ::2].clone(), id="strided"),
        pytest.param(lambda h: h.clone(memory_format=torch.channels_last), id="memory-format"),
    ],
)
def test_kept_when_the_layout_differs(make_clone: Callable[[Tensor], Tensor]) -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = (x + 1).reshape(2, 4, 3, 2)
        c = make_clone(h)
        c.mul_(2)
        return c.sum()

    _, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["layout"]


def test_clones_nothing_writes_are_left_alone() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        return h.clone() * 2

    gm, elimination = eliminate(fn, *x_and_y())
    assert (elimination.removed, elimination.kept) == ([], {})
    assert len(clones(gm)) == 1


def test_kept_for_a_constant() -> None:
    constant = torch.ones(8, 6)

    def fn(x: Tensor) -> Tensor:
        c = constant.clone()
        c.mul_(2)
        return c + x

    gm = make_fx(fn)(torch.randn(8, 6))
    elimination = CloneEliminationPass()
    elimination(gm.graph)
    assert list(elimination.kept.values()) == ["constant"]


def test_removing_one_clone_is_seen_by_the_next() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        first = h.clone()  # written last: nothing reads h after, so removed
        second = h.clone()
        second.mul_(3)
        first.add_(1)
        return first, second

    gm, elimination = eliminate(fn, *x_and_y())
    # Removing `first` makes `first.add_` write h; `second` is written before that write, so h
    # is read (by that write) after `second`'s write: second stays.
    assert len(elimination.removed) == 1 and list(elimination.kept.values()) == ["read after write"]
    check_same_results(gm, fn, *x_and_y())


def test_overlap_of_views() -> None:
    base = torch.empty(6, 12)
    assert not may_overlap(base[:, :4], base[:, 8:])
    assert may_overlap(base[:, :5], base[:, 4:])
    assert not may_overlap(base[:3], base[3:])
    assert may_overlap(base[:, ::2], base[:, 1::2])  # not row blocks: unsure, so overlapping
    assert not may_overlap(base[:0], base)
    assert not may_overlap(base[1:2, :4], base[2:4, :4])
    flat = torch.empty(10)
    assert not may_overlap(flat[:5], flat[5:])
    assert may_overlap(flat[:6], flat[5:])
