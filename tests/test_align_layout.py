"""The layout of the house: no import circle among any vqalign modules (imports inside
functions counted), no import from the low floors (io, features, lbg, hmm) up to the
policy and tool floors, no private name taken across package folders, the estimator
module small and no hand-written module over 800 lines."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "vqalign"
CHECKED = ("vqalign",)
LOW = ("vqalign.io", "vqalign.features", "vqalign.lbg", "vqalign.hmm")
HIGH = ("vqalign.align", "vqalign.pipeline", "vqalign.bench", "vqalign.plots", "vqalign.eval",
        "vqalign.codec", "vqalign.commands", "vqalign.cli", "vqalign.demo", "vqalign.datasets")
#: generated code and numba kernel files may be longer
LONG_OK = ("_confidence_coefficients.py", "_kernels.py")


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


def test_low_floors_import_nothing_from_higher_floors(graph):
    up = [(m, t) for m, edges in graph.items() if m.startswith(LOW)
          for t, _ in edges if t.startswith(HIGH)]
    assert up == []


def _package(mods, m):
    """The folder a module lives in: vqalign.align.x -> vqalign.align; vqalign.cli -> vqalign."""
    parts = m.split(".")
    if mods[m].name == "__init__.py":
        return m if len(parts) > 1 else "vqalign"
    return ".".join(parts[:-1])


def test_no_private_name_across_package_folders(graph):
    """``vqalign._x`` helper modules at the top (validation, threads, lazy exports) are the
    house's shared infrastructure, made for every folder; dunders are not private."""
    mods = _modules()
    bad = []
    for m, edges in graph.items():
        for t, n in edges:
            if _package(mods, t).split(".")[:2] == _package(mods, m).split(".")[:2]:
                continue
            tparts = t.split(".")
            if len(tparts) == 2 and tparts[1].startswith("_"):
                continue
            name_private = (n or "").startswith("_") and not (n or "").startswith("__")
            if name_private or any(p.startswith("_") for p in tparts[1:]):
                bad.append((m, t, n))
    assert bad == []


def test_no_hand_written_module_over_800_lines():
    long = [(str(f.relative_to(PKG)), n) for f in PKG.rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 800 and not f.name.endswith(LONG_OK)]
    assert long == []


def test_pipeline_uses_no_private_name_of_align(graph):
    bad = [(m, t, n) for m, edges in graph.items() if m.startswith("vqalign.pipeline")
           for t, n in edges if t.startswith("vqalign.align")
           and ((n or "").startswith("_") or any(p.startswith("_") for p in t.split(".")))]
    assert bad == []


def test_the_estimator_module_is_small():
    n = len((PKG / "align" / "aligner.py").read_text().splitlines())
    assert n <= 600, f"align/aligner.py has {n} lines"
