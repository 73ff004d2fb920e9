"""Read a PyTorch checkpoint's tensors as numpy arrays, without PyTorch and without running its code.

A `.pth` file is a pickle (inside a zip since PyTorch 1.6, or followed by the raw storages in
the older format), and unpickling calls whatever the pickle names. Like PyTorch's
`weights_only` loading, only the few globals that a dict of tensors needs are allowed; each
is replaced by a harmless stand-in of our own, so nothing from the file is ever called.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_lib.errors import ModelFileError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # what torch.save wrote before the zip format
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass
class _Storage:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple
    views: list = field(default_factory=list)


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    """Stand-in for torch._utils._rebuild_tensor(_v2): records where the tensor lies, copies nothing."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _Tensor(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_unused):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class _RefusedGlobal(Exception):
    pass


class _TensorUnpickler(pickle.Unpickler):
    """An unpickler that knows only the allow-listed globals and the storages' persistent ids."""

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise _RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, saved_id):
        # Zip format: ('storage', type, key, location, numel); legacy: (..., numel, view_metadata).
        if not (isinstance(saved_id, tuple) and len(saved_id) in (5, 6) and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {saved_id!r:.60}")
        storage_type, key, numel = saved_id[1], str(saved_id[2]), saved_id[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError("a storage record that is not a tensor storage")
        if len(saved_id) == 6 and saved_id[5] is not None:
            raise pickle.UnpicklingError("storage views (PyTorch before 0.4) are not supported")
        storage = self.storages.setdefault(key, _Storage(key, storage_type.dtype, numel))
        if storage.dtype != storage_type.dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is described twice, differently")
        return storage


def _unpickle(file, storages: dict[str, _Storage]):
    return _TensorUnpickler(file, storages).load()


def _read_legacy(path: Path, raw: bytes, storages: dict[str, _Storage]):
    stream = io.BytesIO(raw)
    if _unpickle(stream, storages) != LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch checkpoint (wrong magic number)")
    _unpickle(stream, storages)  # protocol version
    system = _unpickle(stream, storages)
    if isinstance(system, dict) and system.get("little_endian") is False:
        raise pickle.UnpicklingError("saved on a big-endian machine, which is not supported")
    result = _unpickle(stream, storages)
    keys = _unpickle(stream, storages)
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise pickle.UnpicklingError("the list of storages does not match the tensors")
    for key in map(str, keys):
        storage = storages[key]
        header = stream.read(8)
        if len(header) < 8:
            raise EOFError
        (numel,) = struct.unpack("<q", header)
        nbytes = numel * np.dtype(storage.dtype).itemsize
        if numel != storage.numel or nbytes > len(raw) - stream.tell():
            raise EOFError
        storage.data = np.frombuffer(stream.read(nbytes), dtype=storage.dtype)
    return result


def _read_zip(path: Path, storages: dict[str, _Storage]):
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError("no single data.pkl in the archive")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder").strip() != b"little":
            raise pickle.UnpicklingError("saved big-endian, which is not supported")
        result = _unpickle(io.BytesIO(archive.read(pickles[0])), storages)
        for key, storage in storages.items():
            data = archive.read(f"{prefix}data/{key}")
            if len(data) < storage.numel * np.dtype(storage.dtype).itemsize:
                raise EOFError
            storage.data = np.frombuffer(data, dtype=storage.dtype, count=storage.numel)
    return result


def _materialise(path: Path, name: str, tensor: _Tensor) -> np.ndarray:
    data = tensor.storage.data
    if data is None:
        raise pickle.UnpicklingError(f"tensor {name} has no data")
    shape, stride = tensor.shape, tensor.stride
    if len(shape) != len(stride) or any(s < 0 for s in shape + stride):
        raise pickle.UnpicklingError(f"tensor {name} has a malformed shape")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, data.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if tensor.offset < 0 or last >= data.size:
        raise pickle.UnpicklingError(f"tensor {name} lies outside its storage")
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(data[tensor.offset:], shape, [s * itemsize for s in stride], writeable=False)
    return np.array(view)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state-dict checkpoint (`torch.save(model.state_dict())`), by name.

    Only tensors, dicts and plain values are read; a file that names anything else (code it
    would run on loading) is refused with ModelFileError, as are truncated or altered files.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: checkpoint not found")
    storages: dict[str, _Storage] = {}
    try:
        if zipfile.is_zipfile(path):
            result = _read_zip(path, storages)
        else:
            result = _read_legacy(path, path.read_bytes(), storages)
        if not isinstance(result, dict):
            raise pickle.UnpicklingError("it holds no dict of tensors")
        state = {str(name): _materialise(path, str(name), value) for name, value in result.items()
                 if isinstance(value, _Tensor)}
    except _RefusedGlobal as refused:
        raise ModelFileError(f"{path}: refused: the checkpoint names {refused}, which a file of tensors does not need "
                             "and which could run code on loading; use a plain state_dict checkpoint") from None
    except (EOFError, struct.error, zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(f"{path}: truncated or corrupt checkpoint ({type(error).__name__}); re-install or "
                             "re-download it") from None
    except (pickle.UnpicklingError, ValueError, TypeError, IndexError, AttributeError, MemoryError) as error:
        raise ModelFileError(f"{path}: not a readable PyTorch state_dict checkpoint ({error}); re-install or "
                             "re-download it") from None
    if not state:
        raise ModelFileError(f"{path}: the checkpoint holds no tensors")
    return state
