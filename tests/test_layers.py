"""The layers import only downward: core <- data <- models <- train <- vision, tabular; inference and serve skip train."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "centaur"
ORDER = ["core", "data", "models", "train", "vision"]
ALLOWED = {name: set(ORDER[: i + 1]) for i, name in enumerate(ORDER)}
ALLOWED["tabular"] = set(ORDER[:4]) | {"tabular"}  # beside vision: each builds on train, not on the other
ALLOWED["vision"] = set(ORDER)
ALLOWED["inference"] = {"core", "data", "models", "inference"}
ALLOWED["serve"] = ALLOWED["inference"] | {"serve"}
ALLOWED["batch"] = ALLOWED["inference"] | {"batch"}  # batch prediction, like serving, never trains
ALLOWED["interpret"] = set(ORDER) | {"tabular", "inference", "interpret"}  # a server loads models to predict; it never trains
ALLOWED["label"] = ALLOWED["interpret"] | {"label"}  # the workbench uses inference, models and interpret


def _centaur_imports(path):
    """Top-level centaur packages a module imports (relative imports resolved)."""
    package = path.relative_to(SRC).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("centaur"):
                target = node.module.split(".")[1:]
            else:
                continue
            found.add(target[0] if target else "")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("centaur."))
    return found - {""}


def test_lower_layers_never_import_higher_ones():
    bad = []
    for path in SRC.rglob("*.py"):
        layer = path.relative_to(SRC).parts[0].removesuffix(".py")
        if layer not in ALLOWED:
            continue  # cli.py and the package root may use everything
        for imported in _centaur_imports(path):
            if imported in ALLOWED and imported not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(SRC)} imports {imported}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_imports():
    assert "core" in _centaur_imports(SRC / "data" / "block.py")
    assert "models" in _centaur_imports(SRC / "inference.py")
