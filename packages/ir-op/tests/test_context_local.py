"""Priority and torch wrap blocks are local to their thread and asyncio task.

``with op.set_priority(...)``, ``with config.set_priority()`` and ``with enable_torch_wrap(...)``
change only the calling context; ``set_default`` and ``set_default_torch_wrap`` change the
process default every context falls back to. The providers here return ``x + k`` with a
different ``k`` each, so an output says which provider ran.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor

from ir_op import (
    IrOp,
    IrOpPriorityConfig,
    enable_torch_wrap,
    register_op,
    set_default_torch_wrap,
    torch_wrap_enabled,
)
from ir_op.context import OVERRIDES
from ir_op.explain import explain

# Which provider ran, from what it added to a zero input.
RAN = {0.0: "native", 1.0: "a", 2.0: "b", 3.0: "c"}
TIMEOUT = 10.0  # seconds; an Event that times out fails the test instead of hanging it


def shift(x: Tensor) -> Tensor:
    return x.clone()


def shift_a(x: Tensor) -> Tensor:
    return x + 1


def shift_b(x: Tensor) -> Tensor:
    return x + 2


def shift_c(x: Tensor) -> Tensor:
    return x + 3


def other(x: Tensor) -> Tensor:
    return x.clone()


def other_a(x: Tensor) -> Tensor:
    return x + 1


@pytest.fixture
def op(isolated: dict[str, IrOp]) -> IrOp:
    op = register_op(shift)
    op.register_impl("a")(shift_a)
    op.register_impl("b")(shift_b)
    op.register_impl("c")(shift_c)
    op.set_default(["native"])
    return op


@pytest.fixture
def op2(op: IrOp) -> IrOp:
    """A second op in the same registry (its default: native)."""
    second = register_op(other)
    second.register_impl("a")(other_a)
    second.set_default(["native"])
    return second


@pytest.fixture(autouse=True)
def no_leftover_block() -> Iterator[None]:
    """Every test starts and must end outside any block, with the wrap default on."""
    assert OVERRIDES.get() is None
    yield
    assert OVERRIDES.get() is None
    assert torch_wrap_enabled()


def ran(op: IrOp) -> str:
    return RAN[float(op(torch.zeros(1)).item())]


def wait(event: threading.Event) -> None:
    assert event.wait(TIMEOUT), "the other thread did not get there in time"


def run_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``target`` in a thread that records what it raised, so the test can re-raise."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


def join(thread: threading.Thread, errors: list[BaseException]) -> None:
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


# -- threads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [True, False], ids=["wrap_on", "wrap_off"])
def test_a_block_in_one_thread_is_invisible_to_another(op: IrOp, wrap: bool) -> None:
    entered, checked = threading.Event(), threading.Event()

    def in_block() -> None:
        with enable_torch_wrap(wrap), op.set_priority(["a"]):
            assert ran(op) == "a"
            entered.set()
            wait(checked)
            assert ran(op) == "a"

    thread, errors = run_thread(in_block)
    wait(entered)
    try:
        assert op.get_priority() == ["native"]
        assert ran(op) == "native"
    finally:
        checked.set()
        join(thread, errors)


def test_a_thread_without_blocks_gets_the_default_while_another_loops(op: IrOp) -> None:
    """The issue's reproduction: one thread in and out of blocks, another never in one."""
    done = threading.Event()
    seen: dict[str, int] = {}

    def looping() -> None:
        # In and out of blocks until the observer finished, at least a few hundred times.
        rounds = 0
        while not done.is_set() or rounds < 200:
            with op.set_priority(["a"]):
                assert ran(op) == "a"
                with enable_torch_wrap(False), op.set_priority(["b"]):
                    assert ran(op) == "b"
            rounds += 1

    thread, errors = run_thread(looping)
    try:
        for _ in range(500):
            name = ran(op)
            seen[name] = seen.get(name, 0) + 1
            assert torch_wrap_enabled()
    finally:
        done.set()
        join(thread, errors)
    assert seen == {"native": 500}


def test_overlapping_blocks_in_two_threads_exit_out_of_order(op: IrOp) -> None:
    """T1 enters, T2 enters, T1 exits, T2 exits: each sees its own to the end, none is left."""
    t1_in, t2_in, t1_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with op.set_priority(["a"]), enable_torch_wrap(False):
            t1_in.set()
            wait(t2_in)
            assert ran(op) == "a"
        t1_out.set()
        assert ran(op) == "native"

    def second() -> None:
        wait(t1_in)
        with op.set_priority(["b"]):
            t2_in.set()
            wait(t1_out)
            assert ran(op) == "b"
            assert torch_wrap_enabled()
        assert ran(op) == "native"

    threads = [run_thread(first), run_thread(second)]
    for thread, errors in threads:
        join(thread, errors)
    assert op.get_priority() == ["native"]
    assert ran(op) == "native"


def test_a_new_thread_starts_from_the_process_default(op: IrOp) -> None:
    """Threads do not inherit the blocks of the thread that starts them; copy_context does."""
    seen: dict[str, str] = {}

    def record(key: str) -> None:
        seen[key] = ran(op)
        seen[key + " wrap"] = str(torch_wrap_enabled())

    with op.set_priority(["a"]), enable_torch_wrap(False):
        join(*run_thread(lambda: record("plain")))
        context = contextvars.copy_context()
        join(*run_thread(lambda: context.run(record, "copied")))
    assert seen == {
        "plain": "native",
        "plain wrap": "True",
        "copied": "a",
        "copied wrap": "False",
    }


def test_set_default_in_another_thread_reaches_every_context_outside_its_blocks(
    op: IrOp,
) -> None:
    entered, changed = threading.Event(), threading.Event()

    def in_block() -> None:
        with op.set_priority(["a"]):
            entered.set()
            wait(changed)
            assert ran(op) == "a"  # its own block still wins
        assert ran(op) == "b"  # the new process default

    thread, errors = run_thread(in_block)
    wait(entered)
    op.set_default(["b"])
    changed.set()
    join(thread, errors)
    assert ran(op) == "b"


def test_config_blocks_are_thread_local(op: IrOp, op2: IrOp) -> None:
    config = IrOpPriorityConfig(shift=["c"], other=["a"])
    entered, checked = threading.Event(), threading.Event()

    def in_block() -> None:
        with config.set_priority():
            assert ran(op) == "c"
            assert ran(op2) == "a"
            entered.set()
            wait(checked)

    thread, errors = run_thread(in_block)
    wait(entered)
    try:
        assert (ran(op), ran(op2)) == ("native", "native")
    finally:
        checked.set()
        join(thread, errors)


# -- asyncio tasks -------------------------------------------------------------------------------


def test_concurrent_tasks_keep_their_own_blocks(op: IrOp) -> None:
    async def main() -> list[str]:
        a_in, b_in = asyncio.Event(), asyncio.Event()

        async def task(provider: str, mine: asyncio.Event, theirs: asyncio.Event) -> str:
            with op.set_priority([provider]):
                mine.set()
                await theirs.wait()  # the other task is inside its block now
                await asyncio.sleep(0)
                return ran(op)

        async def bystander() -> str:
            await a_in.wait()
            await b_in.wait()
            return ran(op)

        return list(await asyncio.gather(task("a", a_in, b_in), task("b", b_in, a_in), bystander()))

    assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == ["a", "b", "native"]
    assert ran(op) == "native"


def test_a_task_inherits_its_creators_block_and_keeps_its_own(op: IrOp) -> None:
    async def main() -> tuple[str, str, str, bool]:
        async def inner() -> str:
            with op.set_priority(["b"]), enable_torch_wrap(False):
                await asyncio.sleep(0)
                return ran(op)

        async def inherited() -> str:
            return ran(op)

        with op.set_priority(["a"]):
            from_creator = await asyncio.create_task(inherited())
            own = await asyncio.create_task(inner())
            after = ran(op)  # the task's block did not leak into its creator
            wrap = torch_wrap_enabled()
        return from_creator, own, after, wrap

    assert asyncio.run(main()) == ("a", "b", "a", True)


# -- nesting, exceptions, set_default inside a block -----------------------------------------------


def test_nested_blocks_restore_exactly(op: IrOp, op2: IrOp) -> None:
    with op.set_priority(["a"]):
        with enable_torch_wrap(False):
            with op2.set_priority(["a"]):
                with op.set_priority(["b"]):
                    assert (ran(op), ran(op2), torch_wrap_enabled()) == ("b", "a", False)
                assert (ran(op), ran(op2), torch_wrap_enabled()) == ("a", "a", False)
                with IrOpPriorityConfig(shift=["c"]).set_priority():
                    assert (ran(op), ran(op2)) == ("c", "a")  # other ops' blocks stay
                with enable_torch_wrap(True):
                    assert (ran(op), ran(op2), torch_wrap_enabled()) == ("a", "a", True)
            assert (ran(op), ran(op2), torch_wrap_enabled()) == ("a", "native", False)
        assert op.get_priority() == ["a"]
        assert torch_wrap_enabled()
    assert (ran(op), ran(op2)) == ("native", "native")


def test_an_exception_restores_every_block(op: IrOp) -> None:
    with op.set_priority(["a"]):
        with (
            pytest.raises(RuntimeError, match="boom"),
            op.set_priority(["b"]),
            enable_torch_wrap(False),
        ):
            assert ran(op) == "b"
            raise RuntimeError("boom")
        assert ran(op) == "a"
        assert torch_wrap_enabled()
    assert ran(op) == "native"


def test_a_bad_priority_enters_no_block(op: IrOp) -> None:
    with op.set_priority(["a"]):
        with pytest.raises(ValueError, match="unknown provider 'nope'"), op.set_priority(["nope"]):
            pass
        with (
            pytest.raises(ValueError, match="unknown provider 'nope'"),
            IrOpPriorityConfig(shift=["nope"]).set_priority(),
        ):
            pass
        assert ran(op) == "a"


def test_set_default_inside_a_block_applies_after_it(op: IrOp) -> None:
    with op.set_priority(["a"]):
        op.set_default(["b"])
        assert ran(op) == "a"
        assert op.get_priority() == ["a"]
    assert ran(op) == "b"
    assert op.get_priority() == ["b"]


def test_set_default_torch_wrap_inside_a_block_applies_after_it() -> None:
    try:
        with enable_torch_wrap(True):
            set_default_torch_wrap(False)
            assert torch_wrap_enabled()
        assert not torch_wrap_enabled()
        with enable_torch_wrap(False):
            set_default_torch_wrap(True)
            assert not torch_wrap_enabled()
    finally:
        set_default_torch_wrap(True)
    assert torch_wrap_enabled()


def test_a_priority_block_keeps_the_wrap_default_live(op: IrOp) -> None:
    """A block that sets only a priority does not freeze the torch wrap flag."""
    try:
        with op.set_priority(["a"]):
            set_default_torch_wrap(False)
            assert not torch_wrap_enabled()
            assert ran(op) == "a"
    finally:
        set_default_torch_wrap(True)


def test_the_lowering_and_explain_see_the_block(op: IrOp) -> None:
    x = torch.zeros(1)
    with op.set_priority(["b"]):
        assert op.get_priority(compiling=True) == ["b"]
        assert op.dispatch(x).provider == "b"
        selected = [d.provider for d in explain(op, (x,)) if d.outcome == "selected"]
        assert selected == ["b"]
    assert op.get_priority(compiling=True) == ["native"]


def test_maybe_inplace_follows_the_block(isolated: dict[str, IrOp]) -> None:
    def bump(x: Tensor) -> Tensor:
        return x + 1

    def bump_in_place(x: Tensor) -> Tensor:
        return x.add_(1)

    op = register_op(allow_inplace=True)(bump)
    op.register_impl("inplace", inplace=True)(bump_in_place)
    op.set_default(["native"])
    x = torch.zeros(2)
    assert op.maybe_inplace(x) is not x
    with op.set_priority(["inplace"]):
        assert op.maybe_inplace(x) is x
        with enable_torch_wrap(False):
            assert op.maybe_inplace(x) is x
    assert op.maybe_inplace(x) is not x


# -- torch.compile -----------------------------------------------------------------------------


def test_a_compiled_graph_keeps_the_choice_of_the_context_that_compiled_it(op: IrOp) -> None:
    """With wrap off, Dynamo traces dispatch and bakes the provider of the compiling context
    into the graph (ir_op.context.current_overrides is a constant of the trace, as Dynamo
    before torch 2.15 cannot trace ContextVar.get): a block entered later does not change what
    the graph runs, nor recompile it; a graph compiled inside the block runs the block's."""
    frames: list[torch.fx.GraphModule] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Tensor]) -> object:
        frames.append(gm)
        return gm.forward

    def call(x: Tensor) -> Tensor:
        out: Tensor = op(x)
        return out

    x = torch.zeros(1)
    with enable_torch_wrap(False):
        torch._dynamo.reset()
        compiled = torch.compile(call, backend=backend, fullgraph=True)
        assert float(compiled(x).item()) == 0.0
        with op.set_priority(["b"]):
            assert float(compiled(x).item()) == 0.0  # the graph's provider, not the block's
            torch._dynamo.reset()
            in_block = torch.compile(call, backend=backend, fullgraph=True)
            assert float(in_block(x).item()) == 2.0
        assert float(in_block(x).item()) == 2.0
    assert len(frames) == 2
    torch._dynamo.reset()
