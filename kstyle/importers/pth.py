"""Reads PyTorch ``.pth`` state dicts without PyTorch, and without running their pickles.

A ``.pth`` file is a pickle of an (ordered) dict of tensors, in one of two containers:

- the zip format (``torch.save`` since PyTorch 1.6): ``<name>/data.pkl`` is the pickle,
  each tensor's storage a file ``<name>/data/<key>``;
- the legacy format (PyTorch 0.4 to 1.5, and what the reference projects published): a
  sequence of pickles (a magic number, the protocol version, the system info, the state
  dict, the list of storage keys), then each storage's element count and bytes.

The pickles are read by an unpickler that knows only the names a state dict needs (an
ordered dict, the tensor and parameter rebuild calls, the typed storage classes); any
other global (a function that would run, a class of a model) is refused by name before
anything of it is called. That makes a hostile file an error instead of a program, which
``torch.load(weights_only=False)`` does not. Storages are checked against the sizes and
strides their tensors claim, so a tensor cannot read past its file.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from kstyle.errors import ModelLoadError

#: PyTorch's typed storages, by class name: (numpy dtype, bytes per element).
_STORAGES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"), "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class PthError(ModelLoadError):
    """A ``.pth`` file that is not a readable state dict; the message names the file."""


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co. in a pickle: only its dtype is used."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGES[name]


class _Storage:
    """A storage's elements (a flat numpy array), filled when its bytes are read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, numel, None


class _Tensor:
    """A tensor as the pickle describes it; made a numpy array once storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def array(self, path) -> np.ndarray:
        storage = self.storage
        data = storage.data
        if data is None:
            raise PthError(f"{path}: a tensor's storage is missing from the file")
        if any(s < 0 for s in self.size) or any(s < 0 for s in self.stride):
            raise PthError(f"{path}: a tensor has a negative size or stride")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if 0 in self.size:
            return np.zeros(self.size, _numpy_dtype(storage.dtype))
        if self.offset < 0 or last >= data.size:
            raise PthError(f"{path}: a tensor of shape {self.size} reaches past its storage "
                           f"({data.size} elements): the file is damaged")
        item = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * item for s in self.stride],
            writeable=False)
        array = np.array(view, order="C")  # a copy: owns its memory, not the file's
        if storage.dtype == _STORAGES["BFloat16Storage"]:  # bfloat16: the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _numpy_dtype(dtype):
    return np.float32 if dtype == _STORAGES["BFloat16Storage"] else dtype


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_):
    return data


class _Unpickler(pickle.Unpickler):
    """Unpickles a state dict; refuses every global but the few a state dict needs."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        **{("torch", name): _StorageType(name) for name in _STORAGES},
    }

    def __init__(self, file, path, storage):
        super().__init__(file, encoding="utf-8")
        self.path, self.storage = path, storage

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise PthError(
                f"{self.path}: refused: its pickle asks for {module}.{name}, which a state "
                "dict of weights never needs (a pickle can run code this way). Nothing of "
                "it was run. If the file comes from a source you trust, load it with torch "
                "and save its state_dict() again") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            raise PthError(f"{self.path}: unknown record {str(pid)[:80]} in the pickle")
        return self.storage(pid[1:])


def _load(file, path, storage):
    try:
        return _Unpickler(file, path, storage).load()
    except PthError:
        raise
    except EOFError:
        raise PthError(f"{path}: cut short (its pickle ends early): the file is damaged or "
                       "incomplete") from None
    except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error) as e:
        raise PthError(f"{path}: not a readable PyTorch file ({type(e).__name__}: {e})") \
            from None


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``.pth`` state dict, by name, as numpy arrays (bfloat16 as float32).

    Also reads a checkpoint dict that holds the state dict under one of its keys
    (``{"state_dict": {...}}``, ``{"model": {...}}``); other values than tensors (an epoch
    counter) are left out.

    Raises:
        PthError: not a PyTorch file, damaged, not a state dict, or a pickle that asks for
            anything but tensors (named, and not run).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise PthError(f"{path}: cannot be read ({e.strerror or e})") from None
    if head[:2] == b"PK":
        result = _read_zip(path)
    elif head[:1] == b"\x80":
        result = _read_legacy(path)
    else:
        raise PthError(f"{path}: not a PyTorch .pth file (it starts with {head!r})")
    return _tensors(result, path)


def _tensors(result, path) -> dict[str, np.ndarray]:
    if isinstance(result, dict):
        for key in ("state_dict", "model", "params", "model_state_dict"):
            if isinstance(result.get(key), dict):
                result = result[key]
                break
    if not isinstance(result, dict):
        raise PthError(f"{path}: holds a {type(result).__name__}, not a state dict")
    tensors = {str(k): v.array(path) for k, v in result.items() if isinstance(v, _Tensor)}
    if not tensors:
        raise PthError(f"{path}: holds no tensors")
    return tensors


def _read_zip(path: Path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PthError(f"{path}: damaged zip archive ({e})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise PthError(f"{path}: a zip archive without one data.pkl: not a torch.save file")
        root = pickles[0][: -len("data.pkl")]
        order = archive.read(root + "byteorder").decode() if root + "byteorder" in \
            archive.namelist() else "little"
        storages: dict[str, _Storage] = {}

        def storage(record):
            kind, key, _location, numel = record[:4]
            if not isinstance(kind, _StorageType):
                raise PthError(f"{path}: a storage of an unknown type")
            key = str(key)
            if key not in storages:
                try:
                    raw = archive.read(f"{root}data/{key}")
                except (KeyError, zipfile.BadZipFile, OSError, EOFError) as e:
                    raise PthError(f"{path}: storage {key} is missing or damaged ({e})") \
                        from None
                dtype = kind.dtype.newbyteorder("<" if order == "little" else ">")
                if len(raw) % dtype.itemsize:
                    raise PthError(f"{path}: storage {key} is cut short")
                s = _Storage(kind.dtype, len(raw) // dtype.itemsize)
                s.data = np.frombuffer(raw, dtype).astype(kind.dtype, copy=False)
                storages[key] = s
            return storages[key]

        return _load(io.BytesIO(archive.read(pickles[0])), path, storage)


def _read_legacy(path: Path):
    with open(path, "rb") as f:
        def header():
            return _load(f, path, lambda record: (_ for _ in ()).throw(
                PthError(f"{path}: a storage in the file's header")))

        if header() != _LEGACY_MAGIC:
            raise PthError(f"{path}: not a PyTorch file (wrong magic number)")
        if header() != _LEGACY_PROTOCOL:
            raise PthError(f"{path}: an unknown PyTorch file version")
        info = header()
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise PthError(f"{path}: written on a big-endian machine; not supported")
        storages: dict[str, _Storage] = {}
        views = []

        def storage(record):
            kind, key, _location, numel, view = record
            if not isinstance(kind, _StorageType):
                raise PthError(f"{path}: a storage of an unknown type")
            key = str(key)
            storages.setdefault(key, _Storage(kind.dtype, int(numel)))
            if view is None:
                return storages[key]
            view_key, offset, size = view
            part = _Storage(kind.dtype, int(size))
            views.append((part, key, int(offset)))
            return part

        result = _load(f, path, storage)
        keys = header()
        if not isinstance(keys, list):
            raise PthError(f"{path}: damaged (no list of storages after the state dict)")
        for key in keys:
            s = storages.get(str(key))
            if s is None:
                raise PthError(f"{path}: damaged (storage {key} is not used by any tensor)")
            count = f.read(8)
            if len(count) < 8:
                raise PthError(f"{path}: cut short before storage {key}")
            (numel,) = struct.unpack("<q", count)
            nbytes = numel * s.dtype.itemsize
            if numel != s.numel or numel < 0:
                raise PthError(f"{path}: damaged (storage {key} holds {numel} elements, "
                               f"its tensors say {s.numel})")
            raw = f.read(nbytes)
            if len(raw) < nbytes:
                raise PthError(f"{path}: cut short in storage {key}")
            s.data = np.frombuffer(raw, s.dtype)
        for part, key, offset in views:
            whole = storages[key].data
            if whole is None or offset + part.numel > whole.size:
                raise PthError(f"{path}: damaged (a view past its storage)")
            part.data = whole[offset: offset + part.numel]
        return result
