"""``CleanupPass``: topological sort, then dead-code elimination.

Fusion can leave users of a fused op's second output before the op (the value they read used to
be computed earlier), and replaced nodes unused. The stable sort moves such users after their
producers and keeps every other node where it was; dead-code elimination drops unused pure
nodes (in-place writes are impure and stay).
"""

from __future__ import annotations

from torch.fx import Graph


class CleanupPass:
    def __call__(self, graph: Graph) -> None:
        from torch._inductor.pattern_matcher import stable_topological_sort

        stable_topological_sort(graph)
        graph.eliminate_dead_code()
