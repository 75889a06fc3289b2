"""kstyle.importers.pth reads PyTorch state dicts as torch wrote them (tests/pth/make.py), in both
containers, without torch; a pickle that would run code, or a damaged file, is refused by
name and nothing of it runs."""

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kstyle.importers.pth import PthError, read_state_dict

FIXTURES = Path(__file__).resolve().parent / "pth"


@pytest.mark.parametrize("name", ["state_zip.pth", "state_legacy.pth", "checkpoint.pth"])
def test_reads_what_torch_wrote(name):
    tensors = read_state_dict(FIXTURES / name)
    with np.load(FIXTURES / "state_expected.npz") as expected:
        assert list(tensors) == expected.files
        for key in expected.files:
            assert tensors[key].shape == expected[key].shape, key
            assert tensors[key].dtype == expected[key].dtype, key
            np.testing.assert_array_equal(tensors[key], expected[key], err_msg=key)
    assert tensors["transposed"].flags.c_contiguous  # arrays own their memory
    assert not np.shares_memory(tensors["rows"], tensors["base"])


def leave_marker(path):
    Path(path).touch()


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (leave_marker, (str(self.marker),))


def zip_pth(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    return path


def legacy_pth(path, payload: bytes, tail: bytes = b""):
    header = b"".join(pickle.dumps(x, protocol=2) for x in
                      (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    path.write_bytes(header + payload + tail)
    return path


@pytest.mark.parametrize("container", [zip_pth, legacy_pth])
def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path, container):
    marker = tmp_path / "it_ran"
    path = container(tmp_path / "hostile.pth", pickle.dumps({"w": RunsCode(marker)},
                                                            protocol=2))
    with pytest.raises(PthError) as err:
        read_state_dict(path)
    assert str(err.value).startswith(
        f"{path}: refused: its pickle asks for {leave_marker.__module__}.leave_marker")
    assert "Nothing of it was run" in str(err.value)
    assert not marker.exists()


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def tensor_pickle(size: tuple[int, ...], numel: int) -> bytes:
    """A protocol-2 pickle of ``{"w": tensor}`` as torch writes it (written opcode by opcode:
    pickling torch's globals would need torch): one float storage of ``numel`` elements."""
    ints = lambda values: b"(" + b"".join(b"K" + bytes([v]) for v in values) + b"t"  # noqa: E731
    strides = [int(np.prod(size[i + 1:])) for i in range(len(size))]
    storage = (b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text("0") + _text("cpu")
               + b"K" + bytes([numel]) + b"N" + b"tQ")  # the tuple, as a persistent id
    rebuild = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + b"K\x00" + ints(size)
               + ints(strides) + b"\x89}tR")
    return b"\x80\x02}" + _text("w") + rebuild + b"s."


def test_a_tensor_cannot_reach_past_its_storage(tmp_path):
    tail = pickle.dumps(["0"], protocol=2) + struct.pack("<q", 4) + np.zeros(4, "<f4").tobytes()
    fits = legacy_pth(tmp_path / "fits.pth", tensor_pickle((2, 2), 4), tail)
    assert read_state_dict(fits)["w"].shape == (2, 2)
    path = legacy_pth(tmp_path / "long.pth", tensor_pickle((10, 10), 4), tail)
    with pytest.raises(PthError, match="a tensor of shape \\(10, 10\\) reaches past its "
                                       "storage \\(4 elements\\): the file is damaged"):
        read_state_dict(path)


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "cut short"),
    (lambda data: b"GIF89a" + data, "not a PyTorch .pth file"),
    (lambda data: b"", "not a PyTorch .pth file"),
])
def test_a_damaged_legacy_file_is_named(tmp_path, damage, message):
    path = tmp_path / "damaged.pth"
    path.write_bytes(damage((FIXTURES / "state_legacy.pth").read_bytes()))
    with pytest.raises(PthError, match=message) as err:
        read_state_dict(path)
    assert str(err.value).startswith(str(path))


def test_a_damaged_zip_file_is_named(tmp_path):
    data = (FIXTURES / "state_zip.pth").read_bytes()
    path = tmp_path / "damaged.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PthError) as err:
        read_state_dict(path)
    assert str(err.value).startswith(f"{path}: damaged zip archive")


def test_not_a_state_dict(tmp_path):
    path = zip_pth(tmp_path / "list.pth", pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(PthError, match="holds a list, not a state dict"):
        read_state_dict(path)
