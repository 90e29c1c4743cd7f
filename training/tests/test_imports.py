"""The package's import graph: no cycles (imports inside functions included), and fgtrain.metrics is a
NumPy-only leaf (no torch, nothing from fgtrain)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from conftest import TRAINING

PKG = "fgtrain"
PKG_DIR = os.path.join(TRAINING, PKG)


def modules() -> dict[str, str]:
    """{dotted name: path} of every module of the package (fgtrain = its __init__.py)."""
    out = {}
    for f in sorted(os.listdir(PKG_DIR)):
        if f.endswith(".py"):
            name = PKG if f == "__init__.py" else PKG + "." + f[:-3]
            out[name] = os.path.join(PKG_DIR, f)
    return out


def imports(path: str, known) -> tuple[set[str], set[str]]:
    """(fgtrain modules, other top-level packages) that the module at path imports anywhere in its
    code: at the top, inside functions and classes, under `if`/`try`. `from . import x` is the
    submodule x when there is one, else the package itself (a name from __init__.py)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    own, other = set(), set()

    def add(dotted: str, names=()):
        if dotted != PKG and not dotted.startswith(PKG + "."):
            other.add(dotted.split(".")[0])
            return
        subs = [dotted + "." + n for n in names if dotted + "." + n in known]
        if subs:
            own.update(subs)
        if len(subs) < len(names) or not names:
            # the module itself, or the deepest known module above it
            while dotted not in known and "." in dotted:
                dotted = dotted.rsplit(".", 1)[0]
            own.add(dotted)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert node.level == 1, "%s: relative import beyond the package" % path
                dotted = PKG + ("." + node.module if node.module else "")
            else:
                dotted = node.module
            names = [a.name for a in node.names if a.name != "*"]
            if dotted == PKG or dotted.startswith(PKG + "."):
                add(dotted, names)
            else:
                add(dotted)
    return own, other


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    known = modules()
    own, other = {}, {}
    for name, path in known.items():
        o, x = imports(path, known)
        own[name] = o - {name}
        other[name] = x
    return own, other


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_graph_sees_function_level_imports():
    # the parser itself: relative, absolute and function-level imports, submodules vs package names
    src = ("from . import Budget, data\nimport torch\n"
           "def f():\n    from .damsm import x\n    import fgtrain.export\n    from fgtrain import tokenizer\n")
    known = {PKG: "", PKG + ".data": "", PKG + ".damsm": "", PKG + ".export": "", PKG + ".tokenizer": ""}
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fgtrain_imports_probe_%d.py" % os.getpid())
    with open(path, "w", encoding="utf-8") as f:
        f.write(src)
    try:
        own, other = imports(path, known)
    finally:
        os.remove(path)
    assert own == {PKG, PKG + ".data", PKG + ".damsm", PKG + ".export", PKG + ".tokenizer"}
    assert other == {"torch"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    own, _ = graph()
    assert len(own) > 10 and PKG + ".metrics" in own
    cycle = find_cycle(own)
    assert cycle is None, "import cycle in fgtrain: " + " -> ".join(cycle)


def test_metrics_is_a_numpy_leaf():
    own, other = graph()
    m = PKG + ".metrics"
    assert own[m] == set(), "fgtrain.metrics imports %s" % sorted(own[m])
    assert "torch" not in other[m] and other[m] <= {"__future__", "numpy", "math"}, sorted(other[m])
    # and at run time: importing it loads no torch
    code = "import sys, fgtrain.metrics; sys.exit(1 if 'torch' in sys.modules else 0)"
    r = subprocess.run([sys.executable, "-c", code], cwd=TRAINING, capture_output=True, text=True)
    assert r.returncode == 0, "import fgtrain.metrics loads torch\n" + r.stderr


def test_generators_share_helpers_not_training_modules():
    """Generator training modules import shared helpers (trainkit, gan2, scoring, ...), not each other;
    a v2 module may build on its own v1 counterpart (attngan2 -> attngan, cvaegan2 -> cvaegan)."""
    own, _ = graph()
    trainers = {PKG + "." + n for n in ("cvaegan", "attngan", "cvaegan2", "attngan2")}
    allowed = {(PKG + ".attngan2", PKG + ".attngan"), (PKG + ".cvaegan2", PKG + ".cvaegan")}
    bad = sorted((a, b) for a in trainers for b in own[a] & trainers if (a, b) not in allowed)
    assert not bad, bad
