"""Segmentation: PQL parsed to a typed AST and compiled to one SQL boolean over merged profiles."""

from upstack.segments.compile import compile_pql
from upstack.segments.pql import PqlError, parse

__all__ = ["PqlError", "compile_pql", "parse"]
