"""A small DAG of models: deterministic topological order, ancestors, descendants, and cycles that print."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CycleError(Exception):
    """Raised with the cycle as a list of names, first name repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(" -> ".join(cycle))
        self.cycle = cycle


class Graph:
    """Nodes and their parents (the models they ref)."""

    def __init__(self, parents: Mapping[str, Iterable[str]]) -> None:
        self.parents: dict[str, tuple[str, ...]] = {n: tuple(sorted(set(p))) for n, p in parents.items()}
        self.children: dict[str, list[str]] = {n: [] for n in self.parents}
        for node, node_parents in self.parents.items():
            for parent in node_parents:
                self.children.setdefault(parent, []).append(node)
        for kids in self.children.values():
            kids.sort()

    def order(self) -> list[str]:
        """Parents before children, ties broken by name; raises CycleError."""
        visiting: dict[str, int] = {}
        done: set[str] = set()
        result: list[str] = []
        for start in sorted(self.parents):
            if start in done:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = []
            while stack:
                node, index = stack.pop()
                if index == 0:
                    if node in done:
                        continue
                    if node in visiting:
                        cycle = path[visiting[node]:] + [node]
                        raise CycleError(cycle)
                    visiting[node] = len(path)
                    path.append(node)
                parents = self.parents.get(node, ())
                if index < len(parents):
                    stack.append((node, index + 1))
                    stack.append((parents[index], 0))
                else:
                    visiting.pop(node)
                    path.pop()
                    done.add(node)
                    result.append(node)
        return result

    def ancestors(self, node: str) -> set[str]:
        return self._walk(node, self.parents)

    def descendants(self, node: str) -> set[str]:
        return self._walk(node, self.children)

    @staticmethod
    def _walk(node: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
        seen: set[str] = set()
        todo = list(edges.get(node, ()))
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(edges.get(current, ()))
        return seen
