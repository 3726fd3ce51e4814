"""The layout: one folder per study in each layer, imports that flow one way, and no cycle.

    experiments.cli, experiments.registry  ->  experiments.<study>  ->  experiments.framework
                                                       |                        |
                                                       v                        v
                                          sinkjax.<study> -> sinkjax.text -> sinkjax (the zoo)
    theory: imports neither sinkjax nor experiments (and is imported by both sides' studies).

The graph is read from the source with `ast` (every `import` and `from ... import`, also those
inside functions), so it holds for imports that run late too.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("sinkjax", "experiments", "theory")
STUDIES = ("active_dormant", "cot_rl", "sinks")
# Shared by the studies of one layer (not a study): sinkjax.text is the text corpora and LM
# plumbing; experiments.framework is the experiment interface and machinery. The rest of
# sinkjax (the zoo in sinkjax.models, training, probes, interventions...) is its shared core.
SHARED_SUBPACKAGES = {"sinkjax": ("text",), "experiments": ("framework",)}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports (a `from P import n` counts P.n when it is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) - {module_name(p)} for p in paths}


GRAPH = import_graph()


def layer_of(module: str) -> str:
    """ "sinkjax.cot_rl.rl" -> "sinkjax.cot_rl"; a module of a package's top level, or of one of
    its shared subpackages, -> that package or subpackage."""
    top, _, rest = module.partition(".")
    sub = rest.split(".")[0]
    if sub in STUDIES or sub in SHARED_SUBPACKAGES.get(top, ()):
        return f"{top}.{sub}"
    return top


def test_the_graph_is_read():
    assert "sinkjax.cot_rl.rl" in GRAPH["experiments.cot_rl.chains_common"]
    assert "experiments.framework.claims" in GRAPH["experiments.active_dormant.theorem3"]


def test_no_import_cycle():
    """Depth-first search over the module graph; a back edge is a cycle."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


ALLOWED = {
    # layer -> the layers it may import (besides itself).
    "theory": set(),
    "sinkjax": set(),
    "sinkjax.text": {"sinkjax"},
    **{f"sinkjax.{s}": {"sinkjax", "sinkjax.text"} for s in STUDIES},
    "experiments.framework": {"sinkjax"},
    **{
        f"experiments.{s}": {
            "experiments.framework",
            "theory",
            "sinkjax",
            "sinkjax.text",
            f"sinkjax.{s}",
        }
        for s in STUDIES
    },
    "experiments": {"experiments.framework", *(f"experiments.{s}" for s in STUDIES), "sinkjax"},
}


def test_imports_flow_one_way():
    """theory imports neither side; sinkjax never imports experiments; a study imports only the
    shared layers and its own study's package of the layer below (no study imports another);
    the framework imports no study and not the registry; only the CLI imports the registry."""
    wrong = []
    for module, targets in GRAPH.items():
        layer = layer_of(module)
        for target in targets:
            if layer_of(target) not in ALLOWED[layer] | {layer}:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)
    importers = sorted(m for m, targets in GRAPH.items() if "experiments.registry" in targets)
    assert importers == ["experiments.cli"]


def test_each_study_is_one_folder_per_layer():
    for layer in ("sinkjax", "experiments"):
        for study in STUDIES:
            folder = ROOT / layer / study
            assert (folder / "__init__.py").is_file(), f"{folder} is not a package"
    registered = {
        module_name(p)
        for study in STUDIES
        for p in (ROOT / "experiments" / study).glob("*.py")
        if "EXPERIMENT = Experiment(" in p.read_text()
    }
    assert len(registered) == 20
    assert registered <= GRAPH["experiments.registry"]
    top_level = {p.stem for p in (ROOT / "experiments").glob("*.py")}
    assert top_level == {"__init__", "__main__", "cli", "registry"}
