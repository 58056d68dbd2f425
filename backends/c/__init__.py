"""The embedded C backend: Jinja templates emitting C, compiled with the system compiler."""

from .backend import BACKEND, CAPABILITIES, BuiltNetwork, build_network, emit_c, generate

__all__ = ["BACKEND", "CAPABILITIES", "BuiltNetwork", "build_network", "emit_c", "generate"]
