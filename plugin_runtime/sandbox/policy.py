"""The compile-time policy for plugin code: RestrictedPython's, plus the size and time
hooks of this runtime.

On top of RestrictedPython's rules (no `_` names, guarded attribute/item access and
writes, no `async`, no `except*`) it rewrites:

* `a * b`, `a ** b`, `a << b`, `a % b` into `_mul_`, `_pow_`, `_lshift_`, `_mod_` calls,
  so one operation cannot build an object over the memory bound;
* f-string fields with a format spec into `_format_(value, conversion, spec)`, so a
  width like `{x:>10000000000}` is checked;
* `obj[key] += v` and `obj.name += v` (RestrictedPython refuses both) into
  `_inplaceitem_`/`_inplaceattr_` calls that read and write through the guards;
* the start of every `except` handler and `finally` block into `_reraise_()`, so code
  that catches the time/memory interruption cannot keep running.
"""

from __future__ import annotations

import ast
from typing import Any

from RestrictedPython.transformer import (
    IOPERATOR_TO_STR,
    RestrictingNodeTransformer,
    copy_locations,
)

_OPERATOR_GUARDS: dict[type[ast.operator], str] = {
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}


def _call(
    name: str, args: list[ast.expr], like: ast.stmt | ast.expr | ast.excepthandler
) -> ast.Call:
    call = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    copy_locations(call, like)
    return call


def _reraise_stmt(like: ast.stmt | ast.excepthandler) -> ast.Expr:
    stmt = ast.Expr(value=_call("_reraise_", [], like))
    copy_locations(stmt, like)
    return stmt


class PluginPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer with this runtime's operator, format and
    interruption hooks."""

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        guard = _OPERATOR_GUARDS.get(type(node.op))
        if guard is None:
            return node
        return _call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        value = _call(
            "_format_", [node.value, ast.Constant(node.conversion), node.format_spec], node
        )
        rewritten = ast.FormattedValue(value=value, conversion=-1, format_spec=None)
        copy_locations(rewritten, node)
        return rewritten

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        if isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            guard, key = "_inplaceitem_", self.visit(target.slice)
        elif isinstance(target, ast.Attribute):
            self.check_name(target, target.attr)
            guard, key = "_inplaceattr_", ast.Constant(target.attr)
        else:
            return super().visit_AugAssign(node)
        operator = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        args = [self.visit(target.value), key, operator, self.visit(node.value)]
        rewritten = ast.Expr(value=_call(guard, args, node))
        copy_locations(rewritten, node)
        return rewritten

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        handler = super().visit_ExceptHandler(node)
        assert isinstance(handler, ast.ExceptHandler)
        handler.body.insert(0, _reraise_stmt(handler))
        return handler

    def visit_Try(self, node: ast.Try) -> Any:
        visited = super().visit_Try(node)
        assert isinstance(visited, ast.Try)
        if visited.finalbody:
            visited.finalbody.insert(0, _reraise_stmt(visited.finalbody[0]))
        return visited


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """Every absolute module name the code imports, anywhere, with its line."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append(("." * node.level + (node.module or ""), node.lineno))
    return found
