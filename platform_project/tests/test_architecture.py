"""The import rules of DESIGN.md, checked on the source: no import cycle between the project's
modules, and no app importing an app to its left in the flow

    platform_project → (reports, customer channels) → conversations → knowledge → llm → accounts → tenants

Every import counts, wherever it stands (module level, inside a function, under TYPE_CHECKING):
a function-level import that dodges a cycle at start-up still ties the two modules together.
Tests, test support and migrations are left out (they may reach anywhere), and so is `bench/`:
scripts run with their own folder on the path, which no module of the project imports.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Left to right: each app may import the apps to its right, and those beside it on its level.
FLOW: tuple[tuple[str, ...], ...] = (
    ("platform_project",),
    ("reports", "line_channel", "widgets", "sources"),  # with the customer channels
    ("conversations",),
    ("knowledge",),
    ("llm",),
    ("accounts",),
    ("tenants",),
)
RANK = {app: position for position, level in enumerate(FLOW) for app in level}
# The project's composition root: it wires every app together and may import any of them.
UNRESTRICTED = {"platform_project"}


def _is_test_or_migration(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return (
        "tests" in parts
        or parts[0] == "testsupport"
        or "migrations" in parts
        or path.name == "conftest.py"
        or path.name.startswith("test_")
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every non-test module of the project's packages (top-level folders with an __init__.py)."""
    packages = sorted(
        child
        for child in ROOT.iterdir()
        if child.is_dir() and not child.name.startswith(".") and (child / "__init__.py").exists()
    )
    modules = {}
    for package in packages:
        for path in package.rglob("*.py"):
            if not _is_test_or_migration(path):
                modules[_module_name(path)] = path
    return modules


def _imports(path: Path, module: str, modules: dict[str, Path]) -> dict[str, int]:
    """The project modules a module imports, with the line of the first import of each.
    `from package import module` imports that module; `from module import name` the module;
    a name that is not a module of the project (the standard library, a dependency) is dropped."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def nearest_module(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    imported: dict[str, int] = {}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [nearest_module(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in modules else nearest_module(base))
        for target in targets:
            if target and target != module:
                imported[target] = min(imported.get(target, node.lineno), node.lineno)
    return imported


def import_graph() -> dict[str, dict[str, int]]:
    """module → {project module it imports: line of its first import}."""
    modules = project_modules()
    return {module: _imports(path, module, modules) for module, path in modules.items()}


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components of more than one module."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = lowlink[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = lowlink[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                lowlink[work[-1][0]] = min(lowlink[work[-1][0]], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _a_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One cycle through the component's first module, as a path back to where it starts."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node]):
                if successor == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = parents[node]
                    return [start, *reversed(path[1:]), start]
                if successor in members and successor not in parents:
                    parents[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle in {component}")  # pragma: no cover - a component has one


def _report(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    cycle = _a_cycle(graph, component)
    text = _describe(graph, cycle)
    if len(cycle) - 1 < len(component):
        text += f" (one of the cycles between {', '.join(component)})"
    return text


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    return (
        " → ".join(
            f"{module} (line {graph[module][following]})"
            for module, following in zip(cycle, cycle[1:], strict=False)
        )
        + f" → {cycle[-1]}"
    )


def test_the_graph_sees_imports_at_every_level():
    # Guards the checks below against passing because they read nothing: a module-level import,
    # a `from package import module`, and an import inside a function (the
    # provider factory loads the client libraries on first use).
    graph = import_graph()
    assert "knowledge.ingestion" in graph["knowledge.tasks"]
    assert "knowledge.retrieval" in graph["conversations.chat"]
    assert "llm.providers.anthropic_messages" in graph["llm.providers"]
    assert not any(module.startswith(("bench", "knowledge.tests")) for module in graph)
    assert "knowledge.migrations" not in " ".join(graph)


def test_there_is_no_import_cycle_between_modules():
    graph = import_graph()
    cycles = [_report(graph, component) for component in _strongly_connected(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_cycle_detection_reports_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    components = _strongly_connected(graph)
    assert components == [["a", "b", "c"]]
    assert _report(graph, components[0]) == "a (line 1) → b (line 2) → c (line 3) → a"
    graph["b"]["a"] = 5
    assert _report(graph, components[0]) == "a (line 1) → b (line 5) → a (one of the cycles between a, b, c)"


def _against_the_flow(graph: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"{module} (line {line}) imports {target}"
        for module, edges in sorted(graph.items())
        for target, line in sorted(edges.items())
        if (app := module.partition(".")[0]) not in UNRESTRICTED
        and RANK[target.partition(".")[0]] < RANK[app]
    ]


def test_apps_import_only_what_stands_to_their_right():
    graph = import_graph()
    apps = {module.partition(".")[0] for module in graph}
    unplaced = sorted(apps - set(RANK))
    assert not unplaced, f"place these apps in FLOW (and in DESIGN.md's import flow): {unplaced}"
    leftwards = _against_the_flow(graph)
    assert not leftwards, "imports against the flow:\n" + "\n".join(leftwards)


def test_the_flow_check_reports_an_import_to_the_left():
    graph = {
        "knowledge.services": {"conversations.models": 7, "llm.base": 8, "knowledge.models": 9},
        "platform_project.urls": {"reports.urls": 3},
    }
    assert _against_the_flow(graph) == ["knowledge.services (line 7) imports conversations.models"]


def test_a_process_that_starts_django_knows_the_tasks_queued_by_name():
    # Without a cycle, services queue the tasks of their app's tasks.py by name; the app configs
    # import the task modules so that a web process (where nothing else imports them) can.
    from knowledge.ingestion import INGEST_ONE_TASK, INGEST_TASK
    from tenants.services import PURGE_TASK

    script = (
        "import django; django.setup(); from celery import current_app; "
        f"print([name for name in {[INGEST_TASK, INGEST_ONE_TASK, PURGE_TASK]!r} if name not in current_app.tasks])"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "platform_project.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"tasks not registered: {result.stdout}"


def _test_module_imports(path: Path) -> list[tuple[str, int]]:
    """The imports of test modules and conftests (`x.tests.y`, `x.conftest`) a file makes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for name in names:
            parts = name.split(".")
            if "tests" in parts or parts[-1] == "conftest":
                found.append((name, node.lineno))
                break
    return found


def test_no_module_imports_a_test_module_or_a_conftest():
    """Shared test helpers live in testsupport/: a test that imports another test module or a
    conftest runs that module's tests and fixtures twice, or depends on collection order."""
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0].startswith(".") or relative.parts[0] in {"var", "node_modules"}:
            continue
        wrong += [f"{relative}:{line} imports {name}" for name, line in _test_module_imports(path)]
    assert wrong == []


def test_the_test_import_check_sees_one(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text("from widgets.tests.conftest import SHOP\nimport reports.tests.helpers\n")
    assert [name for name, _ in _test_module_imports(sample)] == [
        "widgets.tests.conftest",
        "reports.tests.helpers",
    ]
