"""The package's imports flow one way: no module imports one that (through others)
imports it back, and the lower layers never reach up.

Read from the source with ``ast``, every import counted, those inside functions too: a
deferred import is still a dependency.
"""

import ast
from pathlib import Path

KSTYLE = Path(__file__).resolve().parents[1] / "kstyle"

#: What each layer may not import: the layers above it. From the bottom: data and nets
#: (networks, the uint8 graph around them, tiling); models (objectives, and each kind's
#: inference declaration); inference (a model on any backend) and training (what fit
#: uses); then the entry points: api, export, train, evaluate, cli.
ENTRY = ("kstyle.api", "kstyle.cli", "kstyle.export", "kstyle.train", "kstyle.evaluate",
         "kstyle.server")
ABOVE = {
    "kstyle.data": ("kstyle.nets", "kstyle.models", "kstyle.inference", "kstyle.training",
                    "kstyle.importers", "kstyle.recipes", *ENTRY),
    "kstyle.nets": ("kstyle.models", "kstyle.inference", "kstyle.training",
                    "kstyle.importers", "kstyle.recipes", *ENTRY),
    "kstyle.models": ("kstyle.inference", "kstyle.training", *ENTRY),
    "kstyle.inference": ("kstyle.training", *ENTRY),
    "kstyle.training": ("kstyle.inference", *ENTRY),
}


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of kstyle it imports}``; ``from P import m`` counts as
    importing ``P.m`` when that is a module, else ``P``."""
    modules = {}
    for file in KSTYLE.rglob("*.py"):
        name = ".".join(file.relative_to(KSTYLE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = file
    graph = {}
    for name, file in modules.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" for a in node.names
                           if f"{base}.{a.name}" in modules] or [base]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_lower_layers_never_import_upper_ones():
    graph = import_graph()
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in graph.items()
                   for layer, above in ABOVE.items() if within(module, layer)
                   for target in targets if any(within(target, a) for a in above))
    assert wrong == []
