"""Screening the student's code for attempts to subvert the tests, outside the kernel.

The hidden tests run in the student's own kernel, after the student's code: code that replaces what the
tests call (``numpy.isclose``, ``round``, ``helpers.checks``, ``keras.Model.evaluate``, ``In``, IPython's
error display...) could make them pass. The autograde preprocessor
``course.preprocessors.screen_student_code.ScreenStudentCode`` reads the code the student wrote and, when
``findings`` reports one of the constructs below, zeroes the notebook's tests with the reason:

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


class Screen(ast.NodeVisitor):
    """Walks the student's code and collects one reason per suspicious construct (see the module)."""

    def __init__(self, modules: set[str], protected: set[str]):
        self.modules, self.protected, self.reasons = modules, protected, []

    def flag(self, node: ast.AST, what: str) -> None:
        self.reasons.append(f"line {getattr(node, 'lineno', '?')}: {what}")

    def target(self, target: ast.AST, node: ast.AST) -> None:
        """A name, attribute or item that ``node`` binds, assigns or deletes."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.target(element, node)
        elif isinstance(target, ast.Starred):
            self.target(target.value, node)
        elif isinstance(target, ast.Name) and target.id in self.protected:
            self.flag(node, f"rebinds `{target.id}`, which the tests use")
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            root = _root(target)
            roots = self.modules if isinstance(target, ast.Attribute) else ITEM_ROOTS | self.modules
            if isinstance(root, ast.Name) and root.id in roots or getattr(target, "attr", None) in METHODS:
                self.flag(node, f"changes `{ast.unparse(target)}`")

    def visit_Assign(self, node):
        for target in node.targets:
            self.target(target, node)
        self.generic_visit(node)

    visit_Delete = visit_Assign

    def visit_AugAssign(self, node):
        self.target(node.target, node)
        self.generic_visit(node)

    visit_AnnAssign = visit_NamedExpr = visit_For = visit_AsyncFor = visit_comprehension = visit_AugAssign

    def visit_With(self, node):
        for item in node.items:
            if item.optional_vars is not None:
                self.target(item.optional_vars, node)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node):
        if node.name in self.protected:
            self.flag(node, f"defines `{node.name}`, which the tests use")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            from_import = isinstance(node, ast.ImportFrom)
            bound = alias.asname or (alias.name if from_import else alias.name.split(".")[0])
            original = alias.name.split(".")[-1] if from_import or alias.asname else alias.name.split(".")[0]
            if bound in self.protected and (bound != original or bound in BUILTINS):
                self.flag(node, f"imports something else under the name `{bound}`")
            if alias.name.split(".")[0] in NAMES or alias.name in NAMES:
                self.flag(node, f"imports `{alias.name}`")

    visit_ImportFrom = visit_Import

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in CALLS:
            self.flag(node, f"calls `{node.func.id}`")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in NAMES:
            self.flag(node, f"uses `{node.id}`")

    def visit_Attribute(self, node):
        if node.attr in NAMES:
            self.flag(node, f"uses `{ast.unparse(node)}`")
        self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            if name in self.protected:
                self.flag(node, f"declares `{name}` global")


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
    screen = Screen((set(given) | set(imported_names(tree))) - NOT_GUARDED, BUILTINS | set(given))
    screen.visit(tree)
    return list(dict.fromkeys(screen.reasons))


def split_cells(nb) -> tuple[str, list[tuple[str, str]]]:
    """(the given code, [(label, code) of each cell the student wrote]); given = locked cells and tests."""
    from nbgrader.utils import is_locked

    given, student = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_locked(cell):
            given.append(cell.source)
        else:
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1} (added by the student)"
            student.append((label, _python(cell.source)))
    return "\n".join(_python(s) for s in given), student


def _python(source: str) -> str:
    """IPython magics and shell escapes (``%time``, ``!ls``) become comments; the rest is Python."""
    return "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
