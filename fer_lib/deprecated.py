"""The old import paths of the modules that moved into the stage packages, kept working for a while.

`import fer_lib.presets` (or `from fer_lib import presets`) still gives the module, now
`fer_lib.training.presets` (the very same module object, so attributes set through either
name are seen by both), with a DeprecationWarning naming the new path. `python -m
fer_lib.distributed_search` runs the moved module too. Nothing in fer_lib, its scripts,
notebooks or tests imports these paths (tests/test_import_graph.py checks it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED_MODULES = {
    "fer_lib.arguments": "fer_lib.cli.arguments",
    "fer_lib.augmentation": "fer_lib.models.augmentation",
    "fer_lib.calibration": "fer_lib.evaluation.calibration",
    "fer_lib.config": "fer_lib.training.config",
    "fer_lib.detection": "fer_lib.inference.detection",
    "fer_lib.distributed_search": "fer_lib.training.distributed_search",
    "fer_lib.efficientnet_lite": "fer_lib.models.efficientnet_lite",
    "fer_lib.ensemble": "fer_lib.models.ensemble",
    "fer_lib.exploration": "fer_lib.data.exploration",
    "fer_lib.export": "fer_lib.inference.export",
    "fer_lib.layers": "fer_lib.models.layers",
    "fer_lib.live_window": "fer_lib.inference.live_window",
    "fer_lib.model_stats": "fer_lib.models.stats",
    "fer_lib.notebook": "fer_lib.reporting.notebook",
    "fer_lib.pipeline": "fer_lib.reporting.pipeline",
    "fer_lib.precision": "fer_lib.training.precision",
    "fer_lib.predict_cli": "fer_lib.cli.predict",
    "fer_lib.preprocessing": "fer_lib.data.preprocessing",
    "fer_lib.presets": "fer_lib.training.presets",
    "fer_lib.pretrained": "fer_lib.models.pretrained",
    "fer_lib.rebalance": "fer_lib.evaluation.rebalance",
    "fer_lib.reports": "fer_lib.reporting.figures",
    "fer_lib.synthetic": "fer_lib.data.synthetic",
    "fer_lib.torch_checkpoint": "fer_lib.models.torch_checkpoint",
    "fer_lib.tuning": "fer_lib.training.tuning",
    "fer_lib.video": "fer_lib.inference.video",
}


def _warn(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(f"{old} moved to {new}; import it from there", DeprecationWarning, stacklevel=stacklevel + 1)


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads an old name as the module under its new one (which it imports first if need be)."""

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def create_module(self, spec):
        # The warnings module skips the import machinery's frames, so stacklevel 2 is the `import` statement.
        _warn(self.old, self.new, stacklevel=2)
        module = importlib.import_module(self.new)
        self._new_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._new_spec  # importlib set it to the old name's; the module is still the new one

    def get_code(self, fullname: str):
        """For `python -m OLD.NAME`: the new module's code, which runpy runs as __main__."""
        _warn(self.old, self.new, stacklevel=2)
        return importlib.util.find_spec(self.new).loader.get_code(self.new)


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None):
        new = MOVED_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(fullname, new))


def install() -> None:
    """Put the finder first on sys.meta_path, once (fer_lib/__init__ calls this).

    First, so that no other finder (an editable install of an older checkout, say) answers
    for the old names with a file of their own.
    """
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
