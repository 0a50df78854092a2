"""Screening the student's code for attempts to subvert the tests, outside the kernel.

The hidden tests run in the student's own kernel, after the student's code: code that replaces what the
tests call (``numpy.isclose``, ``round``, ``helpers.checks``, ``keras.Model.evaluate``, ``In``, IPython's
error display...) could make them pass. ``ScreenStudentCode`` is an nbgrader autograde preprocessor (it
runs in nbgrader, not in the kernel, after execution and before the scores are saved). It reads the code
the student wrote (answer cells and cells the student added; nbgrader has already restored the given and
test cells) and, if it finds one of the constructs below, puts an error output with the reason into every
test cell, so the notebook's tests score 0 and the grade report names the line:

* assigning to or deleting an attribute of a module the notebook imported (``numpy.isclose = f``,
  ``checks.close_to_expected = f``, ``keras.Model.evaluate = f``), an attribute the tests read from the
  student's objects (``model.evaluate = f``, ``history.history = {...}``), or an item of ``In``/``Out``/``sys``;
* binding a name the tests rely on: a builtin (``round``, ``abs``, ``isinstance``...), ``In``/``Out``,
  or a module imported by the given cells (``def round(...)``, ``checks = ...``, ``import numpy as checks``);
* calling ``setattr``, ``delattr``, ``exec``, ``eval``, ``compile``, ``__import__``, ``globals``, ``vars``;
* touching ``builtins``/``__builtins__``, ``importlib``, ``ctypes``, ``gc``, ``sys.modules``,
  ``settrace``/``setprofile``, code objects (``__code__``, ``__dict__``...), IPython's
  ``set_custom_exc``/``events``/``ast_transformers``/``input_transformers``.

None of these appears in an honest answer to either assignment; the validity sweep (``course sweep``)
checks that every correct variant passes the screen. It is a screen, not a proof: see the README.
"""

from __future__ import annotations

import ast
import builtins

import nbformat
from nbconvert.preprocessors import Preprocessor

TAMPERING = "TamperingSuspected"
BUILTINS = {name for name in dir(builtins) if not name.startswith("_")} | {"In", "Out", "get_ipython"}
CALLS = {"setattr", "delattr", "exec", "eval", "compile", "__import__", "globals", "vars", "locals"}
NAMES = {"builtins", "__builtins__", "importlib", "ctypes", "gc", "inspect", "__code__", "__globals__",
         "__dict__", "__closure__", "__defaults__", "__kwdefaults__", "__class__", "__subclasses__", "modules",
         "settrace", "setprofile", "set_custom_exc", "events", "ast_transformers", "input_transformers_post",
         "input_transformers_cleanup", "showtraceback", "_showtraceback", "run_cell"}
ITEM_ROOTS = {"In", "Out", "sys", "builtins", "__builtins__"}
METHODS = {"fit", "evaluate", "predict", "__call__", "call", "get_config", "history", "params", "epoch", "model",
           "layers"}  # what the tests read from the student's model and History objects
NOT_GUARDED = {"plt", "matplotlib"}  # plt.rcParams[...] = ... is an honest thing to do


def imported_names(tree: ast.AST) -> dict[str, str]:
    """{bound name: the imported name} for every import in ``tree``."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0] if not alias.asname \
                    else alias.name.split(".")[-1]
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                found[alias.asname or alias.name] = alias.name
    return found


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def findings(student_code: str, given_code: str) -> list[str]:
    """Reasons (one line each, with the line number in the student's code) why the code looks like tampering."""
    try:
        tree = ast.parse(student_code)
    except SyntaxError:
        return []  # it does not run either; the tests fail on their own
    try:
        given = imported_names(ast.parse(given_code))
    except SyntaxError:
        given = {}
    modules = (set(given) | set(imported_names(tree))) - NOT_GUARDED
    protected = BUILTINS | set(given)
    reasons = []

    def flag(node: ast.AST, what: str) -> None:
        reasons.append(f"line {getattr(node, 'lineno', '?')}: {what}")

    def check_target(target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                check_target(element, node)
        elif isinstance(target, ast.Starred):
            check_target(target.value, node)
        elif isinstance(target, ast.Name) and target.id in protected:
            flag(node, f"rebinds `{target.id}`, which the tests use")
        elif isinstance(target, ast.Attribute):
            root = _root(target)
            if isinstance(root, ast.Name) and root.id in modules or target.attr in METHODS:
                flag(node, f"changes `{ast.unparse(target)}`")
        elif isinstance(target, ast.Subscript):
            root = _root(target)
            if isinstance(root, ast.Name) and root.id in ITEM_ROOTS | modules:
                flag(node, f"changes `{ast.unparse(target)}`")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Delete)):
            for target in node.targets:
                check_target(target, node)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
            check_target(node.target, node)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            check_target(node.target, node)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    check_target(item.optional_vars, node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in protected:
            flag(node, f"defines `{node.name}`, which the tests use")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or (alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name)
                original = alias.name.split(".")[-1] if isinstance(node, ast.ImportFrom) or alias.asname \
                    else alias.name.split(".")[0]
                if bound in protected and (bound != original or bound in BUILTINS):
                    flag(node, f"imports something else under the name `{bound}`")
                if alias.name.split(".")[0] in NAMES or alias.name in NAMES:
                    flag(node, f"imports `{alias.name}`")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALLS:
            flag(node, f"calls `{node.func.id}`")
        elif isinstance(node, ast.Name) and node.id in NAMES:
            flag(node, f"uses `{node.id}`")
        elif isinstance(node, ast.Attribute) and node.attr in NAMES:
            flag(node, f"uses `{ast.unparse(node)}`")
        elif isinstance(node, ast.Global):
            for name in node.names:
                if name in protected:
                    flag(node, f"declares `{name}` global")
    return list(dict.fromkeys(reasons))


def split_cells(nb) -> tuple[str, list[tuple[str, str]]]:
    """(the given code, [(label, code) of each cell the student wrote]); given = locked cells and tests."""
    given, student = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("locked") or meta.get("grade") and not meta.get("solution"):
            given.append(cell.source)
        else:
            label = meta.get("grade_id") or f"cell {index + 1} (added by the student)"
            student.append((label, _python(cell.source)))
    return "\n".join(_python(s) for s in given), student


def _python(source: str) -> str:
    """IPython magics and shell escapes (``%time``, ``!ls``) become comments; the rest is Python."""
    return "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


class ScreenStudentCode(Preprocessor):
    """nbgrader autograde preprocessor: zero the tests of a notebook whose student code tampers (see module)."""

    enabled = True

    def preprocess(self, nb, resources):
        given, student = split_cells(nb)
        reasons = [f"{label}, {reason}" for label, code in student for reason in findings(code, given)]
        if not reasons:
            return nb, resources
        message = ("the student's code changes what the tests rely on, so the tests cannot be trusted: "
                   + "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""))
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                # first, so that feedback and the grade report show this reason before the test's own result;
                # once, also when the outputs come from a run that was already screened (helpers.parallel)
                cell.outputs = [nbformat.v4.new_output("error", ename=TAMPERING, evalue=message,
                                                       traceback=[f"{TAMPERING}: {message}"])] + [
                    o for o in cell.outputs if o.get("ename") != TAMPERING]
        return nb, resources
