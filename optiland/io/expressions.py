"""Arithmetic expressions from catalog data (the ``[generate]`` distributions), evaluated over numpy arrays.

Only numbers, strings, names, arithmetic (+ - * / ** and unary -), comparisons, & | ~ and calls of the functions the
caller passes are accepted; anything else (attributes, subscripts, lambdas, keywords) is refused with the expression
and the offending construct named, so a catalog cannot run arbitrary code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


MAX_LENGTH = 2000
"""Characters an expression may have."""
MAX_NODES = 400
"""Syntax-tree nodes an expression may have (operators, names, numbers, calls)."""
MAX_EXPONENT = 64.0
"""Largest power a number may be raised to: `9**9**9` (a Python integer of 370 million digits, minutes of work)
is refused at once."""


class ExpressionError(ValueError):
    """An expression that does not parse, uses a construct outside the grammar, names something unknown, or
    exceeds the size and exponent limits."""


def evaluate(text: str, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]], where: str) -> Any:
    """Value of `text` with `names` bound; calls run left to right as written (so random draws keep their order).

    `where` names the expression's place (file and key) in error messages.
    """
    text = str(text)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{where}: the expression has {len(text):,} characters; at most {MAX_LENGTH:,}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else "nested too deeply"
        raise ExpressionError(f"{where}: cannot parse {text!r}: {reason}") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(f"{where}: the expression has {nodes} terms; at most {MAX_NODES}")

    def power(left: Any, right: Any) -> Any:
        exponent = np.asarray(right)
        if exponent.size and np.nanmax(np.abs(exponent.astype(float))) > MAX_EXPONENT:
            raise ExpressionError(f"{where}: an exponent above {MAX_EXPONENT:g} in {text!r}")
        base = np.asarray(left)
        return np.power(base.astype(float), exponent.astype(float)) if base.ndim == 0 and exponent.ndim == 0 \
            else np.power(base, exponent, dtype=float)

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ExpressionError(f"{where}: unknown name {node.id!r} in {text!r}; known: {', '.join(names)}")
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = walk(node.left)
            right = walk(node.right)
            if isinstance(left, str) or isinstance(right, str):
                raise ExpressionError(f"{where}: arithmetic on text in {text!r}")
            if isinstance(node.op, ast.Pow):
                return power(left, right)
            try:
                return _BINARY[type(node.op)](left, right)
            except OverflowError:
                raise ExpressionError(f"{where}: a number too large in {text!r}") from None
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            left = walk(node.left)
            return _COMPARE[type(node.ops[0])](left, walk(node.comparators[0]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if node.func.id not in functions:
                raise ExpressionError(f"{where}: unknown function {node.func.id!r} in {text!r}; known: "
                                      f"{', '.join(functions)}")
            args = [walk(arg) for arg in node.args]
            return functions[node.func.id](*args)
        raise ExpressionError(f"{where}: {type(node).__name__} is not allowed in {text!r}")

    return walk(tree)
