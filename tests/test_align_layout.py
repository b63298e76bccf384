"""The layout of the alignment road: no import circles among align / pipeline / io /
features / datasets modules (imports inside functions counted), no upward imports from
io or features, pipeline without align's private names, the estimator module small."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "vqalign"
CHECKED = ("vqalign.align", "vqalign.pipeline", "vqalign.io", "vqalign.features",
           "vqalign.datasets")


def _modules():
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def _imports(mods):
    """Per module: [(imported module, imported name or None)] of every vqalign import."""
    def owner(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for m, f in mods.items():
        edges = []
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                edges += [(owner(a.name), None) for a in node.names
                          if a.name.startswith("vqalign")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vqalign"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    edges.append((owner(full) if full in mods else owner(node.module), a.name))
        graph[m] = [(t, n) for t, n in edges if t is not None]
    return graph


def _cycles(graph, keep):
    """Strongly connected components (more than one module) of the import graph."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w, _ in graph[v]:
            if w == v:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in comps if any(m.startswith(keep) for m in c)]


@pytest.fixture(scope="module")
def graph():
    return _imports(_modules())


def test_no_import_circles_on_the_road(graph):
    assert _cycles(graph, CHECKED) == []


def test_the_cycle_finder_finds_a_circle():
    g = {"a": [("b", None)], "b": [("c", None)], "c": [("a", None)], "d": [("a", None)]}
    assert _cycles(g, ("a",)) == [["a", "b", "c"]]


def test_io_and_features_import_nothing_from_higher_floors(graph):
    high = ("vqalign.align", "vqalign.pipeline", "vqalign.bench", "vqalign.plots")
    up = [(m, t) for m, edges in graph.items() if m.startswith(("vqalign.io", "vqalign.features"))
          and not m.endswith(".cli") for t, _ in edges if t.startswith(high)]
    assert up == []


def test_pipeline_uses_no_private_name_of_align(graph):
    bad = [(m, t, n) for m, edges in graph.items() if m.startswith("vqalign.pipeline")
           for t, n in edges if t.startswith("vqalign.align")
           and ((n or "").startswith("_") or any(p.startswith("_") for p in t.split(".")))]
    assert bad == []


def test_the_estimator_module_is_small():
    n = len((PKG / "align" / "aligner.py").read_text().splitlines())
    assert n <= 600, f"align/aligner.py has {n} lines"
