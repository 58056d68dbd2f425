"""The compile cache: what a `.snn` file compiles to, kept so that the next run skips the frontend,
the passes (sympy's gradient derivation) and code generation.

`snnc compile`, `snnc train`, `snnc evaluate` and `snnc.compile(path)` share it. An entry is keyed by
sha256 of the compiler (snnc's version and the text of every file of the package), the file's
absolute path and text, the backend, the compile options and `$CC`/`$SNNC_CFLAGS`. It holds:

- `deps`: (path, sha256) of every other file the result was made from (the `.snn` files whose models
  it uses, `File()` weights); a changed one makes the entry a miss;
- `network`: the network as the runtime reads it (train block, populations, projections), without
  the models' equations and the gradient IR, so that reading it back does not import sympy;
- `built`: the backend's build (for C: the library path, manifest and initial weights).

Per entry a JSON file `<cache>/compiled/<key[:2]>/<key>.json` (`cache_codec`: data, never code) and the initial weights beside it in
`<key>.npz` (so that `snnc compile` reads no arrays and needs no numpy), each written to a temporary
file and renamed into place, the arrays first, so concurrent runs each see a whole entry or none. An entry that cannot be read,
names a changed dependency or a library that is gone is a miss; the caller rebuilds and overwrites it.
The cache folder is the user's own (`snnc.cache.cache_dir`), as for the compiled libraries.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnc import cache_codec
from snnc.cache import cache_dir

#: bump when the entry's layout changes
FORMAT = 1
#: the package folders whose files make up "the compiler"
_PACKAGES = ("snnc", "snnc.frontend", "snnc.ir", "snnc.passes", "snnc.backends", "snnc.runtime")
_SUFFIXES = (".py", ".lark", ".j2", ".snn")


@dataclass(frozen=True)
class PopulationFacts:
    """What the runtime reads of a gradient pass's population (`session.make_regularisers`)."""

    regularisation: str | None = None


@dataclass(frozen=True)
class GradientFacts:
    """Stands in for `network.training` in a cached network: which rule, and which populations the
    pass regularises itself (the runtime must not add those a second time)."""

    algorithm: str
    populations: dict[str, PopulationFacts]


@dataclass(frozen=True)
class Entry:
    network: Any  # ir.model.Network without models, discrete IR and gradient IR
    built: Any  # the backend's build record


def path_of(source: Any) -> Path | None:
    """The `.snn` file `source` names, or None for source text (which is not cached)."""
    if isinstance(source, os.PathLike):
        return Path(source)
    text = str(source) if isinstance(source, str) else ""
    return Path(text) if "\n" not in text and (text.endswith(".snn") or os.path.isfile(text)) else None


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """sha256 of snnc's version and of every source, grammar, template and std file of the package:
    a changed compiler never reuses an entry (editable installs included)."""
    import importlib.util

    from snnc import __version__

    digest = hashlib.sha256(__version__.encode())
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in spec.submodule_search_locations if spec else ():
            for path in sorted(Path(folder).rglob("*")):
                if path.suffix in _SUFFIXES and "__pycache__" not in path.parts:
                    digest.update(f"{package}/{path.relative_to(folder)}\0".encode())
                    digest.update(path.read_bytes())
    return digest.hexdigest()


def key(path: Path, backend: str, options: dict[str, Any]) -> str:
    """The entry key of `path` compiled by `backend` with `options` (all of them, defaults included)."""
    parts = [
        f"format {FORMAT}",
        fingerprint(),
        str(path.resolve()),
        hashlib.sha256(path.read_bytes()).hexdigest(),
        backend,
        repr(sorted(options.items())),
        os.environ.get("CC", ""),
        os.environ.get("SNNC_CFLAGS", ""),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _entry_path(root: Path | None, k: str) -> Path:
    return (Path(root) if root is not None else cache_dir()) / "compiled" / k[:2] / f"{k}.json"


def lookup(k: str, root: Path | None = None, *, arrays: bool = True) -> Entry | None:
    """The entry `k`, or None when it is missing, unreadable, stale or its library is gone.

    `arrays=False` leaves the build's initial weights unread (`static` None), and numpy unimported:
    `snnc compile` only says where the library is."""
    target = _entry_path(root, k)
    try:
        doc = cache_codec.loads(target.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT or any(_sha256(Path(p)) != h for p, h in doc["deps"]):
            return None
        built = doc["built"]
        if not Path(built.path).is_file():
            return None
        if arrays and doc["arrays"]:
            import numpy as np

            arrays_path = target.with_suffix(".npz")
            with np.load(arrays_path, allow_pickle=False) as npz:
                static = {name: npz[name] for name in npz.files}
            if set(static) != set(doc["arrays"]):
                return None
            built = dataclasses.replace(built, static=static)
        return Entry(doc["network"], dataclasses.replace(built, cached=True))
    except Exception:  # noqa: BLE001 - any damage to an entry is a miss, rebuilt by the caller
        return None


def store(k: str, network: Any, built: Any, root: Path | None = None) -> None:
    """Keep `network` (the lowered one) and its build under `k`; a cache that cannot be written
    only costs the next run its time."""
    static = getattr(built, "static", None) or {}
    doc = {
        "format": FORMAT,
        "deps": [(str(p), _sha256(p)) for p in dependencies(network)],
        "network": runtime_view(network),
        "built": dataclasses.replace(built, plan=None, static=None) if hasattr(built, "plan") else built,
        "arrays": sorted(static),
    }
    target = _entry_path(root, k)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if static:  # first the arrays, then the entry that names them: a reader never sees half
            import numpy as np

            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".npz")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **static)
            os.replace(tmp, target.with_suffix(".npz"))
        text = cache_codec.dumps(doc)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except (OSError, TypeError):  # an unwritable folder, or a value the codec does not hold
        return


def dependencies(network: Any) -> list[Path]:
    """Files besides the compiled one that its result depends on: the `.snn` files that define the
    models it uses (not the std library, which is part of the compiler) and `File()` weights and
    per-neuron params."""
    found = {
        Path(m.source).resolve()
        for m in network.models.values()
        if m.source not in ("std", "<unknown>", "<string>") and Path(m.source).is_file()
    }
    inits = [p.weight for p in network.projections.values()]
    inits += [i for p in network.projections.values() for i in p.synapse_param_inits.values()]
    inits += [i for p in network.populations.values() for i in p.param_inits.values()]
    for init in inits:
        resolved = init.args.get("resolved") if init.kind == "file" else None
        if resolved:
            found.add(Path(resolved).resolve())
    return sorted(found)


def runtime_view(network: Any) -> Any:
    """`network` without what only the compiler reads (models, discrete and gradient IR): what
    `snnc train` and `CompiledNetwork` read of it, readable without sympy."""
    training = network.training
    facts = None
    if training is not None:
        pops = getattr(training, "populations", None) or {}
        facts = GradientFacts(
            algorithm=str(getattr(training, "algorithm", None) or type(training).__name__),
            populations={
                name: PopulationFacts(
                    None if getattr(pg, "regularisation", None) is None else str(pg.regularisation)
                )
                for name, pg in pops.items()
            },
        )
    return dataclasses.replace(network, models={}, discrete={}, training=facts, specialised=None)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
