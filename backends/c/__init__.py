"""The embedded C backend: Jinja templates emitting C, compiled with the system compiler."""

from .backend import CAPABILITIES, BuiltNetwork, build_network, emit_c, generate

__all__ = ["CAPABILITIES", "BuiltNetwork", "build_network", "emit_c", "generate"]
