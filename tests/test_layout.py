"""The house rules of ``connector/``: HTTP only in ``api/``, nobody reaches into ``api/``, no import circle.

Read from the source (the ``ast`` of every module), so a new module that breaks a rule fails here
whether or not a test imports it. ``app.py`` and ``cli.py`` are the composition roots: they build the
Flask app and the command line from every room, so they alone may import ``connector.api``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "connector"
COMPOSITION_ROOTS = {"connector.app", "connector.cli"}
HTTP_FRAMEWORKS = {"flask", "werkzeug"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` when that is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes: list[ast.AST] = []
    if top_level_only:
        for node in tree.body:
            # ``if TYPE_CHECKING:`` blocks never run
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.append(node)
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_http_layer_imports_flask(module: str) -> None:
    if _room(module) == "api" or module in COMPOSITION_ROOTS:
        return
    frameworks = {name for name in _imports(MODULES[module], top_level_only=False)
                  if name.split(".")[0] in HTTP_FRAMEWORKS}
    assert not frameworks, f"{module} imports {sorted(frameworks)}: HTTP belongs in connector/api/"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_outside_api_imports_api(module: str) -> None:
    if _room(module) == "api" or module in COMPOSITION_ROOTS:
        return
    reached = {name for name in _imports(MODULES[module], top_level_only=False)
               if name == "connector.api" or name.startswith("connector.api.")}
    assert not reached, f"{module} imports {sorted(reached)}: the domain must not depend on the HTTP layer"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_in_connector() -> None:
    graph = {module: {name for name in _imports(path, top_level_only=True) if name in MODULES and name != module}
             for module, path in MODULES.items()}
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    # The check above must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_job_kind_is_in_the_one_table() -> None:
    import connector.delivery.jobs as jobs
    from connector.delivery import outbox

    assert set(outbox.HANDLERS) == set(jobs.JOBS)
    for kind, (module, _) in jobs.JOBS.items():
        handler = outbox.HANDLERS[kind]
        # the metrics wrapper keeps the original under __wrapped__
        assert getattr(handler, "__wrapped__", handler).__module__ == module, kind
