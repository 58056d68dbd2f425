"""Connectivity kinds: one class per kind holds everything snnc knows about it, in one place.

Each kind says which arguments it takes (`spec`, checked and normalised by the frontend), which
problems a projection of it can have (`problems`, reported by the frontend with a location), its
output shape and the geometry the backends print loops from (`geometry`), the shape of its weights,
how its structure and weights are drawn from the seeded generator (`draw`) and the dense
[pre, post] matrix it is equivalent to (`dense_equivalent`). `KINDS` maps `Connectivity.kind` to
its class and `CALLS` maps the `.snn` spelling (`Conv2D(...)`) to it, so adding a kind is one class
here plus its loops in each backend.

Layouts: populations are (H, W, C) channels last and flattened in C order; a conv2d kernel is
[kh, kw, C / groups, F]; the geometry keys are H, W, C, KH, KW, F, OH, OW, STRIDE, PAD_T, PAD_L (a pool
has F = C), plus DIL_H, DIL_W and GROUPS for a Conv2D that dilates or groups (absent at 1, so networks
without them keep their artefacts and IR hash). Only square strides are supported, because the
backends print one STRIDE.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from .diagnostics import Diagnostic, DiagnosticError
from .model import Projection

#: marks an argument without a default (the frontend requires it)
REQUIRED = object()

Args = dict[str, Any]
Shape = tuple[int, ...]
Geometry = dict[str, int]
Arrays = dict[str, np.ndarray]

#: draws the initial weights of a given shape (a closure over the projection's initialiser)
WeightDraw = Callable[[tuple[int, ...]], np.ndarray]


@dataclass(frozen=True)
class Arg:
    """One argument of a connectivity call.

    type: "probability" (a number in (0, 1]), "count" (an integer >= 1), "window" (an integer or a
    pair (h, w) of integers >= 1, stored as a pair), "choice" (a string from `choices`) or "padding"
    (a string from `choices`, or an integer or pair (h, w) of integers >= 0, stored as a pair).
    `default` is REQUIRED, a value, or `None` for "ask `normalise`" (AvgPool2D's stride is its pool).
    `omit_default`: left out of the normalised args while at its default, so an argument added later
    (Conv2D's dilation, groups) does not change the printed IR of networks that do not use it.
    """

    name: str
    type: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    omit_default: bool = False


@dataclass(frozen=True)
class Problem:
    """Why a projection does not fit its populations or arguments.

    what: "shape" (sizes that do not fit) or "value" (an argument snnc does not support); `arg` names
    the argument to point at, None for the whole call.
    """

    what: str
    message: str
    hint: str | None = None
    arg: str | None = None


def pair(value: Any) -> tuple[int, int]:
    """`k` or `(kh, kw)` (hand-built IR may give either) -> (kh, kw)."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


class ConnectivityKind:
    """The behaviour every kind shares; subclasses override what differs."""

    kind: ClassVar[str]  # Connectivity.kind in the IR
    calls: ClassVar[tuple[str, ...]]  # how a .snn file spells it
    #: how its synapses are stored and walked, all a backend needs to print its loops: "dense"
    #: ([pre, post] weights), "csr" (drawn rows: row_ptr, col_idx, one weight per synapse),
    #: "one_to_one" (one weight per pre neuron) or "window" (conv2d/avg_pool2d geometry)
    layout: ClassVar[str] = "dense"
    spec: ClassVar[tuple[Arg, ...]] = ()
    trainable: ClassVar[bool] = True
    #: code of the error raised when a Network built without the frontend does not fit
    mismatch_code: ClassVar[str] = "E-SHAPE"

    @property
    def call(self) -> str:
        return self.calls[0]

    def normalise(self, args: Args) -> Args:
        """Every argument of `spec`, in spec order, with defaults filled and windows as pairs."""
        out: Args = {}
        for a in self.spec:
            value = args.get(a.name, a.default)
            if value is REQUIRED:
                raise KeyError(f"{self.call}() needs '{a.name}'")
            if value is not None and (
                a.type == "window" or (a.type == "padding" and not isinstance(value, str))
            ):
                value = pair(value)
            if a.omit_default and value == a.default:
                continue
            out[a.name] = value
        return out

    def fixed_weight(self, args: Args) -> Fraction | None:
        """The weight of every synapse when the kind fixes it (no `weight` argument allowed), exact."""
        return None

    def output_shape(self, args: Args, pre: Shape) -> Shape | None:
        """The post shape this kind produces from `pre`; None when any post shape fits."""
        return None

    def problems(self, args: Args, pre: Shape, post: Shape) -> list[Problem]:
        """What does not fit, for the frontend to report (empty when the projection is fine)."""
        return []

    def geometry(self, args: Args, pre: Shape) -> Geometry:
        """The integers the backends print the kind's loops from (empty for non-window kinds)."""
        return {}

    def weight_shape(self, num_pre: int, num_post: int, geometry: Geometry) -> Shape:
        """Shape of the weight array; (-1,) when it is known only once the structure is drawn."""
        return (num_pre, num_post)

    def draw(
        self,
        args: Args,
        num_pre: int,
        num_post: int,
        geometry: Geometry,
        rng: np.random.Generator,
        weights: WeightDraw,
    ) -> Arrays:
        """Structure and initial weights (float64), drawn from `rng` in a fixed order."""
        return {"weight": weights(self.weight_shape(num_pre, num_post, geometry))}

    def dense_equivalent(self, arrays: Arrays, num_pre: int, num_post: int, geometry: Geometry) -> np.ndarray:
        """The [pre][post] matrix the projection is equivalent to (tests, export, debugging)."""
        raise NotImplementedError


class Dense(ConnectivityKind):
    kind = "dense"
    calls = ("Dense",)

    def dense_equivalent(self, arrays: Arrays, num_pre: int, num_post: int, geometry: Geometry) -> np.ndarray:
        return np.array(arrays["weight"], dtype=np.float64).reshape(num_pre, num_post)


class _Csr(ConnectivityKind):
    """A structure drawn once with the seed, stored as CSR rows; weights in CSR order."""

    layout = "csr"

    def weight_shape(self, num_pre: int, num_post: int, geometry: Geometry) -> Shape:
        return (-1,)

    def draw(
        self,
        args: Args,
        num_pre: int,
        num_post: int,
        geometry: Geometry,
        rng: np.random.Generator,
        weights: WeightDraw,
    ) -> Arrays:
        mask = self.mask(args, num_pre, num_post, rng)
        counts = mask.sum(axis=1)
        col_idx = np.nonzero(mask)[1].astype(np.int32)
        return {
            "row_ptr": np.concatenate([[0], np.cumsum(counts)]).astype(np.int32),
            "col_idx": col_idx,
            "weight": weights((int(col_idx.size),)),
        }

    def mask(self, args: Args, num_pre: int, num_post: int, rng: np.random.Generator) -> np.ndarray:
        """The [pre, post] boolean matrix of existing synapses."""
        raise NotImplementedError

    def dense_equivalent(self, arrays: Arrays, num_pre: int, num_post: int, geometry: Geometry) -> np.ndarray:
        m = np.zeros((num_pre, num_post))
        rp, ci, w = arrays["row_ptr"], arrays["col_idx"], arrays["weight"]
        for i in range(num_pre):
            m[i, ci[rp[i] : rp[i + 1]]] = w[rp[i] : rp[i + 1]]
        return m


class FixedProbability(_Csr):
    """Each pair is connected with probability p, drawn once with the seed; weights in CSR order."""

    kind = "sparse"
    calls = ("Sparse", "FixedProbability")
    spec = (Arg("p", "probability"),)

    def mask(self, args: Args, num_pre: int, num_post: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random((num_pre, num_post)) < float(args["p"])


class FixedNumberPost(_Csr):
    """Each pre neuron connects to `n` distinct post neurons chosen at random, drawn once with the
    seed (GeNN's FixedNumberPostWithReplacement, without the replacement: one synapse per pair)."""

    kind = "fixed_number_post"
    calls = ("FixedNumberPost",)
    spec = (Arg("n", "count"),)

    def problems(self, args: Args, pre: Shape, post: Shape) -> list[Problem]:
        n, size = int(args["n"]), math.prod(post)
        if n <= size:
            return []
        return [
            Problem(
                "value",
                f"{self.call}(n = {n}) asks for more targets than post has neurons ({size})",
                hint=f"use n <= {size}, or Dense",
                arg="n",
            )
        ]

    def mask(self, args: Args, num_pre: int, num_post: int, rng: np.random.Generator) -> np.ndarray:
        n = int(args["n"])
        mask = np.zeros((num_pre, num_post), dtype=bool)
        for i in range(num_pre):
            mask[i, rng.choice(num_post, size=n, replace=False)] = True
        return mask


class OneToOne(ConnectivityKind):
    kind = "one_to_one"
    layout = "one_to_one"
    calls = ("OneToOne",)
    mismatch_code = "E-ONE-TO-ONE"

    def output_shape(self, args: Args, pre: Shape) -> Shape | None:
        return tuple(pre)

    def problems(self, args: Args, pre: Shape, post: Shape) -> list[Problem]:
        if math.prod(pre) == math.prod(post):
            return []
        return [
            Problem(
                "shape",
                f"{self.call} needs populations of equal size, but pre has {math.prod(pre)} neurons "
                f"{shape_text(pre)} and post has {math.prod(post)} {shape_text(post)}",
            )
        ]

    def weight_shape(self, num_pre: int, num_post: int, geometry: Geometry) -> Shape:
        return (num_pre,)

    def dense_equivalent(self, arrays: Arrays, num_pre: int, num_post: int, geometry: Geometry) -> np.ndarray:
        m = np.zeros((num_pre, num_post))
        m[np.arange(num_pre), np.arange(num_pre)] = arrays["weight"]
        return m


class _Window(ConnectivityKind):
    """A 2-D window slid over an (H, W, C) population: Conv2D and AvgPool2D."""

    layout = "window"
    mismatch_code = "E-CONV-SHAPE"
    window_arg: ClassVar[str]  # the argument holding the window size

    def window(self, args: Args) -> tuple[int, int]:
        raise NotImplementedError

    def stride(self, args: Args) -> int:
        """The one stride of both axes (`problems` refuses unequal ones)."""
        sh, sw = self.normalise(args)["stride"]
        if sh != sw:
            raise ValueError(f"{self.call}: unequal strides ({sh}, {sw}) reached the geometry")
        return sh

    def padding(self, args: Args, pre: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) zero rows and columns around the input."""
        return ((0, 0), (0, 0))

    def dilation(self, args: Args) -> tuple[int, int]:
        """(dh, dw): the step between window taps (1: adjacent pixels)."""
        return (1, 1)

    def groups(self, args: Args) -> int:
        """G: the input and output channels split into G groups, each filter reading its own group."""
        return 1

    def span(self, args: Args) -> tuple[int, int]:
        """The extent (h, w) of the dilated window on the input: d (k - 1) + 1."""
        (kh, kw), (dh, dw) = self.window(args), self.dilation(args)
        return (dh * (kh - 1) + 1, dw * (kw - 1) + 1)

    def channels(self, args: Args, pre: Shape) -> int:
        """F: output channels."""
        raise NotImplementedError

    def output_shape(self, args: Args, pre: Shape) -> Shape | None:
        if len(pre) != 3:
            return None
        h, w, _ = pre
        (kh, kw), s = self.span(args), self.stride(args)
        (pt, pb), (pl, pr) = self.padding(args, pre)
        if kh > h + pt + pb or kw > w + pl + pr:
            return None
        return ((h + pt + pb - kh) // s + 1, (w + pl + pr - kw) // s + 1, self.channels(args, pre))

    def problems(self, args: Args, pre: Shape, post: Shape) -> list[Problem]:
        if len(pre) != 3:
            return [
                Problem(
                    "shape", f"{self.call} needs a pre population of shape (H, W, C), not {shape_text(pre)}"
                )
            ]
        sh, sw = self.normalise(args)["stride"]
        if sh != sw:
            stride_default = next(a.default for a in self.spec if a.name == "stride")
            default = (
                f"the {self.window_arg} size" if stride_default is None else str(pair(stride_default)[0])
            )
            return [
                Problem(
                    "value",
                    f"{self.call}: stride ({sh}, {sw}) must be the same in both axes",
                    f"snnc slides windows with one stride for both axes (default: {default}), "
                    f"e.g. 'stride = {sh}'",
                    "stride",
                )
            ]
        groups = self.groups(args)
        for what, size in (("input channels", pre[2]), ("filters", self.channels(args, pre))):
            if size % groups:
                return [
                    Problem(
                        "value",
                        f"{self.call}: groups = {groups} does not divide the {size} {what}",
                        "groups must divide both the input channels (C of the pre shape) and the filters",
                        "groups",
                    )
                ]
        out = self.output_shape(args, pre)
        if out is None:
            return [Problem("shape", f"{self.call}: the window is larger than the input {shape_text(pre)}")]
        if tuple(post) != out:
            return [
                Problem(
                    "shape",
                    f"{self.call} maps {shape_text(pre)} to {shape_text(out)}, but the post population has "
                    f"shape {shape_text(post)}",
                    f"declare the post population with shape {shape_text(out)}",
                )
            ]
        return []

    def geometry(self, args: Args, pre: Shape) -> Geometry:
        h, w, c = pre
        (kh, kw), stride = self.window(args), self.stride(args)
        (pt, _), (pl, _) = self.padding(args, pre)
        oh, ow, f = self.output_shape(args, pre)  # type: ignore[misc]
        g = dict(H=h, W=w, C=c, KH=kh, KW=kw, F=f, OH=oh, OW=ow, STRIDE=stride, PAD_T=pt, PAD_L=pl)
        (dh, dw), groups = self.dilation(args), self.groups(args)
        if (dh, dw) != (1, 1):
            g.update(DIL_H=dh, DIL_W=dw)
        if groups != 1:
            g["GROUPS"] = groups
        return g

    def _window_matrix(self, shape: tuple[int, int], g: Geometry, kernel: np.ndarray | None) -> np.ndarray:
        """Dense equivalent of a window: `kernel` [kh, kw, C / G, F], or None for the channel-wise mean."""
        m = np.zeros(shape)
        (dh, dw), groups = window_dilation(g), window_groups(g)
        cg, fg = g["C"] // groups, g["F"] // groups
        for oy in range(g["OH"]):
            for ox in range(g["OW"]):
                for ky in range(g["KH"]):
                    for kx in range(g["KW"]):
                        y = oy * g["STRIDE"] + ky * dh - g["PAD_T"]
                        x = ox * g["STRIDE"] + kx * dw - g["PAD_L"]
                        if not (0 <= y < g["H"] and 0 <= x < g["W"]):
                            continue
                        for c in range(g["C"]):
                            i = (y * g["W"] + x) * g["C"] + c
                            if kernel is not None:
                                for f in range(c // cg * fg, (c // cg + 1) * fg):
                                    m[i, (oy * g["OW"] + ox) * g["F"] + f] += kernel[ky, kx, c % cg, f]
                            else:
                                m[i, (oy * g["OW"] + ox) * g["C"] + c] += 1.0 / (g["KH"] * g["KW"])
        return m


def window_dilation(g: Geometry) -> tuple[int, int]:
    """(DIL_H, DIL_W) of a window geometry (absent: 1)."""
    return g.get("DIL_H", 1), g.get("DIL_W", 1)


def window_groups(g: Geometry) -> int:
    """GROUPS of a window geometry (absent: 1)."""
    return g.get("GROUPS", 1)


def explicit_padding(args: Args) -> bool:
    """A Conv2D padded by numbers (PyTorch/NIR style), not "valid" or "same"."""
    return not isinstance(args.get("padding", "valid"), str)


def dilated_or_grouped(args: Args) -> bool:
    """A Conv2D with dilation or groups other than 1 (the C backend prints them, GeNN does not)."""
    return pair(args.get("dilation", 1)) != (1, 1) or int(args.get("groups", 1)) != 1


class Conv2D(_Window):
    kind = "conv2d"
    calls = ("Conv2D",)
    window_arg = "kernel"
    spec = (
        Arg("filters", "count"),
        Arg("kernel", "window"),
        Arg("stride", "window", (1, 1)),
        Arg("padding", "padding", "valid", ("valid", "same")),
        Arg("dilation", "window", (1, 1), omit_default=True),
        Arg("groups", "count", 1, omit_default=True),
    )

    def window(self, args: Args) -> tuple[int, int]:
        return pair(args["kernel"])

    def dilation(self, args: Args) -> tuple[int, int]:
        return pair(args.get("dilation", 1))

    def groups(self, args: Args) -> int:
        return int(args.get("groups", 1))

    def channels(self, args: Args, pre: Shape) -> int:
        return int(args["filters"])

    def padding(self, args: Args, pre: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """'same': the output has ceil(size / stride) positions, padded as evenly as possible, the
        odd row or column after (as TensorFlow does; a dilated window counts its span). A pair
        (ph, pw): ph zero rows above and below, pw zero columns left and right (as PyTorch and NIR
        pad)."""
        given = args.get("padding", "valid")
        if explicit_padding(args):
            ph, pw = pair(given)
            return ((ph, ph), (pw, pw))
        if str(given) != "same":
            return ((0, 0), (0, 0))
        s = self.stride(args)
        pads = []
        for size, k in zip(pre[:2], self.span(args), strict=True):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        return (pads[0], pads[1])

    def weight_shape(self, num_pre: int, num_post: int, geometry: Geometry) -> Shape:
        g = geometry
        return (g["KH"], g["KW"], g["C"] // window_groups(g), g["F"])

    def dense_equivalent(self, arrays: Arrays, num_pre: int, num_post: int, geometry: Geometry) -> np.ndarray:
        return self._window_matrix((num_pre, num_post), geometry, arrays["weight"])


class AvgPool2D(_Window):
    """The channel-wise mean of each window: fixed weights 1 / (ph * pw), nothing to draw or train."""

    kind = "avg_pool2d"
    calls = ("AvgPool2D",)
    window_arg = "pool"
    spec = (Arg("pool", "window"), Arg("stride", "window", None))
    trainable = False

    def normalise(self, args: Args) -> Args:
        out = super().normalise(args)
        if out["stride"] is None:
            out["stride"] = out["pool"]
        return out

    def window(self, args: Args) -> tuple[int, int]:
        return pair(args["pool"])

    def channels(self, args: Args, pre: Shape) -> int:
        return int(pre[2])

    def fixed_weight(self, args: Args) -> Fraction | None:
        ph, pw = self.window(args)
        return Fraction(1, ph * pw)

    def weight_shape(self, num_pre: int, num_post: int, geometry: Geometry) -> Shape:
        return ()

    def draw(
        self,
        args: Args,
        num_pre: int,
        num_post: int,
        geometry: Geometry,
        rng: np.random.Generator,
        weights: WeightDraw,
    ) -> Arrays:
        return {}

    def dense_equivalent(self, arrays: Arrays, num_pre: int, num_post: int, geometry: Geometry) -> np.ndarray:
        return self._window_matrix((num_pre, num_post), geometry, None)


#: Connectivity.kind -> its class, in the order the language documents them
KINDS: dict[str, ConnectivityKind] = {
    k.kind: k for k in (Dense(), FixedProbability(), FixedNumberPost(), OneToOne(), Conv2D(), AvgPool2D())
}
#: the .snn spelling -> its kind
CALLS: dict[str, ConnectivityKind] = {call: k for k in KINDS.values() for call in k.calls}


def kind_of(name: str) -> ConnectivityKind:
    """The class of an IR connectivity kind (a Network built in Python may name an unknown one)."""
    try:
        return KINDS[name]
    except KeyError:
        raise DiagnosticError(
            Diagnostic("E-CONNECTIVITY", f"unknown connectivity '{name}'", hint=f"kinds: {', '.join(KINDS)}")
        ) from None


def require_fits(proj: Projection, pre: Shape, post: Shape) -> None:
    """The frontend reports `problems` with a location; a Network built in Python skips it, so
    whoever plans it calls this and gets the first problem as an error instead of a wrong index."""
    kind = kind_of(proj.connectivity.kind)
    for p in kind.problems(proj.connectivity.args, tuple(pre), tuple(post)):
        raise DiagnosticError(
            Diagnostic(kind.mismatch_code, f"projection '{proj.name}': {p.message}", proj.span, p.hint)
        )
