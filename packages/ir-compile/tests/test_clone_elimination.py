"""CloneEliminationPass: each rule that keeps a clone, and removals that keep the results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

import ir_compile
from ir_compile.passes.clone_elimination import CloneEliminationPass, may_overlap
from ir_compile.testing import ir_graph, run_graph
from ir_op import IrOp, register_op


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


# -- read-only clones ---------------------------------------------------------------------------


def test_a_read_only_clone_is_removed() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        return h.clone() * 2 + y

    gm, elimination = eliminate(fn, *x_and_y())
    assert len(elimination.removed) == 1 and elimination.kept == {}
    assert clones(gm) == []
    check_same_results(gm, fn, *x_and_y())


def test_a_read_only_clone_of_an_undonated_input_is_removed() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        return x.clone() * 2 + y  # reading the caller's tensor is fine

    gm, elimination = eliminate(fn, *x_and_y())
    assert clones(gm) == [] and elimination.kept == {}
    check_same_results(gm, fn, *x_and_y())


@pytest.mark.parametrize("dynamic", [False, True])
def test_a_chain_of_clones_collapses(dynamic: bool) -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        return h.clone().clone().clone() * y

    gm = ir_graph(fn, *x_and_y(), dynamic=dynamic)
    elimination = CloneEliminationPass()
    elimination(gm.graph)
    assert len(elimination.removed) == 3 and clones(gm) == []
    check_same_results(gm, fn, *x_and_y())


def test_several_clones_of_one_input_are_removed() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return x.clone() * 2, x.clone() + y, x.clone().sum(0)

    gm, elimination = eliminate(fn, *x_and_y())
    assert len(elimination.removed) == 3 and clones(gm) == []
    check_same_results(gm, fn, *x_and_y())


def test_kept_when_the_source_is_written_while_the_clone_is_still_read() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        c = h.clone()
        h.add_(y)
        return c * 2, h

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["source written later"]
    assert len(clones(gm)) == 1
    check_same_results(gm, fn, *x_and_y())


def test_kept_when_an_input_is_written_while_its_clone_is_still_read() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        c = x.clone()
        x.mul_(3)
        return c + y

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["source written later"]
    check_same_results(gm, fn, *x_and_y())


def test_a_write_to_the_source_after_the_last_read_of_the_clone_is_fine() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        read = h.clone() * 2
        h.add_(y)
        return read, h

    gm, elimination = eliminate(fn, *x_and_y())
    assert clones(gm) == [] and elimination.kept == {}
    check_same_results(gm, fn, *x_and_y())


@pytest.mark.parametrize(("written", "kept"), [(slice(2, 6), True), (slice(4, 8), False)])
def test_writes_to_other_views_of_the_source_count_where_they_overlap(
    written: slice, kept: bool
) -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        c = h[:4].clone()
        h[written].add_(1)
        return c * 2, h

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == (["source written later"] if kept else [])
    check_same_results(gm, fn, *x_and_y())


def test_a_written_clone_is_not_read_only() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        c = x.clone()  # an undonated input's clone that a kernel writes: kept
        c.mul_(2)
        return c + y

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["undonated graph input"]
    check_same_results(gm, fn, *x_and_y())


def test_kept_when_a_user_may_write_it_unseen() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        return (x + 1).clone() * y

    gm = ir_graph(fn, *x_and_y())
    (clone,) = gm.graph.find_nodes(op="call_function", target=torch.ops.aten.clone.default)
    with gm.graph.inserting_after(clone):
        opaque = gm.graph.call_function(torch.Tensor.mul_, (clone, 1.0))
    opaque.meta["val"] = clone.meta["val"]
    elimination = CloneEliminationPass()
    elimination(gm.graph)
    assert list(elimination.kept.values()) == ["unknown writer"]


def returned_with_its_source(h: Tensor) -> tuple[Tensor, Tensor]:
    return h.clone(), h[:2]


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x, y: (x.clone(), y), id="input"),
        pytest.param(lambda x, y: returned_with_its_source(x + 1), id="source-returned"),
        pytest.param(lambda x, y: (x[2:].clone() + 0, x[2:].clone()), id="view-of-input"),
    ],
)
def test_kept_when_the_returned_clone_would_alias_an_input_or_output(
    fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
) -> None:
    gm, elimination = eliminate(fn, *x_and_y())
    assert "snapshot returned" in elimination.kept.values()
    check_same_results(gm, fn, *x_and_y())


def test_two_returned_clones_of_one_value_keep_one() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + y
        return h.clone(), h.clone()

    gm, elimination = eliminate(fn, *x_and_y())
    assert len(elimination.removed) == 1
    assert list(elimination.kept.values()) == ["snapshot returned"]
    first, second = run_graph(gm, *x_and_y())
    assert first.data_ptr() != second.data_ptr()  # the outputs do not alias
    torch.testing.assert_close(first, second)


def test_a_returned_clone_of_an_intermediate_is_removed() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        return (x + y).clone()

    gm, _ = eliminate(fn, *x_and_y())
    assert clones(gm) == []
    check_same_results(gm, fn, *x_and_y())


@pytest.mark.parametrize(
    "make_clone",
    [
        pytest.param(lambda h: h[..., ::2].clone(), id="strided"),
        pytest.param(lambda h: h.clone(memory_format=torch.channels_last), id="channels-last"),
        pytest.param(lambda h: h.clone(memory_format=torch.contiguous_format), id="asked-for"),
    ],
)
def test_a_read_only_clone_is_kept_when_the_layout_differs(
    make_clone: Callable[[Tensor], Tensor],
) -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = (x + 1).reshape(2, 4, 3, 2)
        return make_clone(h) * 2

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["layout"]
    assert len(clones(gm)) == 1
    check_same_results(gm, fn, *x_and_y())


@pytest.mark.parametrize(("start", "kept"), [(1, "unaligned view"), (2, None)])
def test_a_clone_of_a_view_stays_where_the_view_is_unaligned(start: int, kept: str | None) -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h = x + 1
        return h[start:].clone() * 2  # rows of 6 floats: row 1 starts at 24 bytes, row 2 at 48

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ([kept] if kept else [])
    check_same_results(gm, fn, *x_and_y())


def test_a_clone_of_a_view_stays_when_its_base_is_written_later() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        c = h[2:6].clone()
        h.mul_(y)
        return c * 2, h

    gm, elimination = eliminate(fn, *x_and_y())
    assert list(elimination.kept.values()) == ["source written later"]
    check_same_results(gm, fn, *x_and_y())


def test_written_clones_are_decided_before_read_only_ones() -> None:
    def fn(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        h = x + 1
        snapshot = h.clone()  # read after the in-place write below
        written = h.clone()
        written.mul_(3)
        return written, snapshot * 2

    gm, elimination = eliminate(fn, *x_and_y())
    # `written` goes (nothing reads h after its write); `mul_` then writes h while `snapshot`
    # is still read, so `snapshot` stays.
    assert elimination.removed == ["clone_1"]
    assert elimination.kept == {"clone": "source written later"}
    check_same_results(gm, fn, *x_and_y())


def test_a_clone_whose_written_clone_was_removed_is_decided_as_written() -> None:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        first = x.clone()  # read-only until `second` goes: `mul_` then writes `first`
        second = first.clone()
        second.mul_(2)
        return second + y

    gm, elimination = eliminate(fn, *x_and_y())
    assert elimination.removed == ["clone_1"]
    assert elimination.kept == {"clone": "undonated graph input"}
    x, y = x_and_y()
    torch.testing.assert_close(run_graph(gm, x, y), fn(x.clone(), y))
    torch.testing.assert_close(x, x_and_y()[0])  # the caller's tensor is not written

    def intermediate(x: Tensor, y: Tensor) -> Tensor:
        return fn(x + 1, y)

    gm, elimination = eliminate(intermediate, *x_and_y())
    assert clones(gm) == [] and elimination.kept == {}
    check_same_results(gm, intermediate, *x_and_y())


def test_a_conjugating_clone_is_kept() -> None:
    def fn(x: Tensor) -> Tensor:
        return (x * 1j).conj().clone() * 2

    gm = ir_graph(fn, torch.randn(4, 3))
    elimination = CloneEliminationPass()
    elimination(gm.graph)
    assert list(elimination.kept.values()) == ["layout"]


def test_a_compile_removes_the_read_only_clones_of_a_lowered_implementation(
    isolated: dict[str, IrOp], compiling: None
) -> None:
    @register_op
    def doubled(x: Tensor) -> Tensor:
        snapshot = x.clone()  # traced into the graph by the lowering, after Inductor's noop pass
        return snapshot * 2 + snapshot

    def model(x: Tensor, y: Tensor) -> Tensor:
        out: Tensor = doubled(x + y)
        return out

    x, y = x_and_y()
    backend = ir_compile.backend()
    torch.testing.assert_close(torch.compile(model, backend=backend)(x, y), model(x, y))
    assert backend.report.providers_of("doubled") == {"native"}
    assert backend.report.clones_removed == 1 and backend.report.clones_kept == {}
