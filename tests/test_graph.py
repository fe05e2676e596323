import pytest

from skewless.core.graph import CycleError, Graph


def test_order_is_parents_first_and_deterministic():
    graph = Graph({"c": ["a", "b"], "b": ["a"], "a": [], "d": []})
    assert graph.order() == ["a", "b", "c", "d"]
    assert graph.ancestors("c") == {"a", "b"}
    assert graph.descendants("a") == {"b", "c"}


def test_cycle_reports_the_loop():
    with pytest.raises(CycleError) as info:
        Graph({"a": ["b"], "b": ["c"], "c": ["a"], "z": []}).order()
    assert info.value.cycle == ["a", "b", "c", "a"]


def test_self_reference_is_a_cycle():
    with pytest.raises(CycleError) as info:
        Graph({"a": ["a"]}).order()
    assert info.value.cycle == ["a", "a"]


def test_long_chain_does_not_recurse():
    parents = {f"m{i}": [f"m{i - 1}"] if i else [] for i in range(5000)}
    assert Graph(parents).order()[-1] == "m4999"
