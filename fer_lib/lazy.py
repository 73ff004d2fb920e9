"""A package's names, imported from its modules on first use (PEP 562).

`fer_lib.models`, `fer_lib.training` and the other stage packages offer their main names
(`from fer_lib.training import train`) without importing Keras, OpenCV or TensorFlow when
only a light module of theirs is wanted (`fer --help` reads the training options from
`fer_lib.training.config`). Each package lists its names once, in `EXPORTS`, as
{name: module}; names that left the package are listed in `MOVED` and still work, with a
DeprecationWarning naming where they went. tests/test_import_graph.py reads both tables
as imports of those modules.
"""

from __future__ import annotations

import importlib
import warnings


def package_attributes(package: str, exports: dict[str, str], moved: dict[str, str] | None = None):
    """`__getattr__` and `__dir__` for the package named `package`."""
    moved = moved or {}

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            module = moved.get(name)
            if module is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            warnings.warn(f"{package}.{name} moved to {module}.{name}; import it from there", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__
