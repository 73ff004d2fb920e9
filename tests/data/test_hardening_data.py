"""Messy datasets: every bad file, folder or CSV row is a one-line DataError or a counted skip.

Complements tests/data/test_dataset.py (corrupt headers, empty files, .txt/.DS_Store, unknown
'happiness' folder, missing/empty class, the five bad CSV row kinds, missing column).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import kaggle_layout, make_image_folders, png_claiming, write_face
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile

from fer_lib.data.dataset import load_dataset, stratified_holdout
from fer_lib.data.preprocessing import MIN_FACE_SIDE, load_face_file, to_face_array
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS

# Modest budgets: these run in the normal suite on 2 CPU cores.
FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PIXELS = 48 * 48


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def reasons_of(dataset) -> dict[str, int]:
    return dataset.info()["skipped_reasons"]


# ---------------------------------------------------------------- image files


def test_truncated_tiny_huge_and_non_image_files_are_counted_by_reason(tmp_path):
    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=4, n_test=1))
    sad = root / "train" / "sad"
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8))
    jpeg, png = encoded(face, "JPEG"), encoded(face, "PNG")
    (sad / "Training_cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # truncated mid-scan
    (sad / "Training_no_eoi.jpg").write_bytes(jpeg[:-2])  # only the end marker missing
    (sad / "Training_cut.png").write_bytes(png[: len(png) // 2])
    (sad / "Training_text.png").write_text("a text file with an image name")
    (sad / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 60)
    (sad / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    Image.new("L", (1, 1), 128).save(sad / "Training_dot.png")
    (sad / "Training_bomb.png").write_bytes(png_claiming(20_000, 20_000))  # Pillow's own limit
    (sad / "Training_big.png").write_bytes(png_claiming(12_000, 8_000))  # 96M pixels: our guard
    dataset = load_dataset(root)
    assert reasons_of(dataset) == {
        "unreadable image (truncated)": 3,
        "unreadable image (too large)": 2,
        "not an image file": 2,
        "unreadable image (not an image)": 1,
        "unreadable image (too small)": 1,
    }
    assert len(dataset.train) + len(dataset.val) == 7 * 4  # every real face kept
    summary = dataset.describe()
    assert "Skipped 9 file(s) or row(s):" in summary
    assert "  3 x unreadable image (truncated) (e.g. " in summary
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(DataError, match=r"Training_cut\.jpg: cannot read image \(truncated"):
        load_face_file(sad / "Training_cut.jpg")
    with pytest.raises(DataError, match=r"Training_bomb\.png: image is too large.*decompression-bomb guard.*downscale"):
        load_face_file(sad / "Training_bomb.png")


def test_truncated_images_stay_refused_after_importing_the_whole_library():
    """Some libraries switch Pillow to padding truncated files with gray; none of ours may."""
    import fer_lib.inference.detection  # noqa: F401 (imports cv2 and MTCNN)
    import fer_lib.inference.photos  # noqa: F401
    import fer_lib.inference.video  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_any_mode_loads_as_48x48_gray_with_sensible_values(tmp_path):
    folder = tmp_path / "modes"
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    files = {
        "gray16.png": Image.fromarray(ramp),  # mode I;16
        "rgba.png": Image.new("RGBA", (50, 50), (0, 0, 0, 0)),  # fully transparent: white
        "palette.png": Image.new("RGB", (40, 60), (0, 0, 0)).convert("P"),
        "cmyk.jpg": Image.new("CMYK", (64, 64), (0, 0, 0, 255)),  # black ink: black
        "bilevel.png": Image.new("1", (48, 48), 1),
        "la.png": Image.new("LA", (48, 48), (200, 255)),
        "wide.png": Image.new("RGB", (400, 30), (255, 255, 255)),
    }
    folder.mkdir()
    for name, image in files.items():
        image.save(folder / name)
    arrays = {name: load_face_file(folder / name, min_side=MIN_FACE_SIDE) for name in files}
    for name, array in arrays.items():
        assert array.shape == (48, 48) and array.dtype == np.uint8, name
    assert arrays["gray16.png"][0, 0] <= 5 and arrays["gray16.png"][-1, -1] >= 250  # scaled, not clipped to white
    assert 100 < arrays["gray16.png"][24, 24] < 160
    assert arrays["rgba.png"].min() == 255 and arrays["cmyk.jpg"].max() < 30
    assert arrays["bilevel.png"].min() == 255 and arrays["la.png"][0, 0] == 200


def test_nested_folders_symlinks_and_hidden_folders(tmp_path):
    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=3, n_test=1))
    happy = root / "train" / "happy"
    write_face(happy / "2019" / "party" / "Training_nested.png", value=200)
    outside = tmp_path / "elsewhere"
    write_face(outside / "Training_linked_dir.png", value=90)
    write_face(tmp_path / "Training_linked_file.png", value=91)
    (happy / "more").symlink_to(outside, target_is_directory=True)  # a folder of images elsewhere
    (happy / "Training_link.png").symlink_to(tmp_path / "Training_linked_file.png")
    (happy / "Training_dangling.png").symlink_to(tmp_path / "deleted.png")
    (happy / "2019" / "loop").symlink_to(happy, target_is_directory=True)  # would recurse forever
    write_face(happy / ".ipynb_checkpoints" / "Training_copy.png")
    (root / "train" / ".cache").mkdir()
    dataset = load_dataset(root)
    happy_total = sum(dataset.split(s).class_counts()["happy"] for s in ("train", "val"))
    assert happy_total == 3 + 1 + 1 + 1  # own, nested, via directory symlink, via file symlink
    assert reasons_of(dataset) == {"hidden folder": 2, "broken symlink": 1, "directory symlink loop": 1}
    assert "1 x directory symlink loop (e.g. " in dataset.describe()


@pytest.mark.parametrize("folder", ["Contempt", "7"])
def test_unexpected_class_folder_is_a_one_line_error_naming_it(tmp_path, folder):
    layout = kaggle_layout(n_train=2, n_test=1)
    layout["test"][folder] = ["x.png"]
    root = make_image_folders(tmp_path / "fer", layout)
    with pytest.raises(DataError, match=rf"test/{folder}: unknown class folder '{folder}'.*rename it to one of angry") as error:
        load_dataset(root)
    assert "\n" not in str(error.value)


def test_empty_test_split_and_too_small_train_are_errors(tmp_path):
    layout = kaggle_layout(n_train=3, n_test=1)
    layout["test"] = {emotion: [] for emotion in EMOTIONS}
    root = make_image_folders(tmp_path / "empty_test", layout)
    for emotion in EMOTIONS:
        (root / "test" / emotion).mkdir(parents=True, exist_ok=True)
    with pytest.raises(DataError, match=r"empty_test: the test split is empty \(the test folder is the test split\); add images"):
        load_dataset(root)
    one_each = make_image_folders(tmp_path / "one_each", kaggle_layout(n_train=1, n_test=1))
    with pytest.raises(DataError, match=r"the val split is empty: train has too few images per class.*at least 2 per class"):
        load_dataset(one_each)


# ---------------------------------------------------------------- fer2013.csv


def csv_text(rows: list[str], header: str = "emotion,pixels,Usage") -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def good_rows(n_per_class: int = 2) -> list[str]:
    pixels = " ".join(["100"] * PIXELS)
    return [f"{label},{pixels},Training" for label in range(7) for _ in range(n_per_class)] + \
           [f"{label},{pixels},PublicTest" for label in range(7)]


def test_csv_lines_the_parser_would_drop_are_counted_with_line_numbers(tmp_path):
    pixels = " ".join(["7"] * PIXELS)
    rows = good_rows()
    bad = [f"3,{pixels},Training,extra", "3", f"3,{pixels}\0,Training", f"\udcff\udcfe,{pixels},Training", f"-1,{pixels},Training"]
    path = tmp_path / "fer2013.csv"  # with a byte-order mark, a blank line, a NUL and two bytes that are not UTF-8
    path.write_bytes(("\ufeff" + csv_text(rows[:5] + [""] + bad + rows[5:])).encode("utf-8", "surrogateescape"))
    dataset = load_dataset(path, use_cache=False)
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == len(rows)  # BOM header read, blank line ignored
    by_line = {s.source.rsplit(":", 1)[1]: s.reason for s in dataset.skipped}
    assert by_line == {
        "8": "wrong number of fields (4, expected 3)",
        "9": "wrong number of fields (1, expected 3)",
        "10": "malformed pixel string (expected space-separated integers)",
        "11": "unknown emotion label '\ufffd\ufffd' (expected 0-6)",
        "12": "unknown emotion label '-1' (expected 0-6)",
    }


@pytest.mark.parametrize("content, message", [
    (b"", "empty file; fer2013.csv needs a header line"),
    (b"emotion,pixels,Usage\n", "no usable rows (0 skipped)"),
    (b"emotion,Usage\n0,Training\n", "missing column(s) pixels in the header (found 'emotion', 'usage')"),
    (b"PK\x03\x04\x00\x00binary zip renamed to csv", "missing column(s) emotion, pixels"),
])
def test_unusable_csv_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        load_dataset(path, use_cache=False)
    assert message in str(error.value) and str(error.value).startswith(str(path))
    assert "\n" not in str(error.value)


_garbage_field = st.text(st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",)), max_size=30)


@FAST
@given(st.lists(st.tuples(_garbage_field, _garbage_field, _garbage_field, st.sampled_from(["emotion", "pixels", "usage"])),
                min_size=1, max_size=12), st.randoms(use_true_random=False))
@pytest.mark.slow
def test_csv_rows_of_random_garbage_never_crash_and_are_all_counted(tmp_path_factory, garbage, random):
    rows = good_rows(2)
    bad_rows = []
    for emotion, pixels, usage, broken in garbage:
        # Keep one field garbage for sure; the others random too, so every kind of mix is tried.
        fields = {"emotion": emotion, "pixels": pixels, "usage": usage}
        if broken == "emotion":
            assume(not (emotion.strip().isascii() and emotion.strip().isdigit() and int(emotion) < 7))
        elif broken == "pixels":
            assume(len(pixels.split()) != PIXELS)  # 30 characters can never hold 2304 numbers
        else:
            assume(usage.strip().lower() not in ("training", "publictest", "privatetest"))
        bad_rows.append(",".join(fields.values()))
    lines = rows + bad_rows
    random.shuffle(lines)
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    path.write_text(csv_text(lines), encoding="utf-8")
    dataset = load_dataset(path, use_cache=False)
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == len(rows)
    blank = sum(1 for line in bad_rows if not line.replace(",", "").strip())
    assert len(dataset.skipped) == len(bad_rows) - blank


@FAST
@given(st.binary(max_size=400))
def test_csv_of_arbitrary_bytes_loads_or_raises_a_data_error(tmp_path_factory, junk):
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    rows = good_rows(2)
    path.write_bytes(csv_text(rows).encode() + junk)
    dataset = load_dataset(path, use_cache=False)  # the good rows always suffice; junk only adds skips
    loaded = len(dataset.train) + len(dataset.val) + len(dataset.test)
    assert loaded in (len(rows), len(rows) + 1)  # junk may, rarely, be a valid row itself
    assert all(s.reason for s in dataset.skipped)


# ---------------------------------------------------------------- preprocessing properties

_ARRAY_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_])


@st.composite
def image_arrays(draw):
    dtype = draw(_ARRAY_DTYPES)
    height, width = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = (height, width) if channels is None else (height, width, channels)
    elements = None
    if np.issubdtype(dtype, np.floating):
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@FAST
@given(image_arrays())
def test_any_numeric_array_becomes_48x48_uint8(array):
    face = to_face_array(array)
    assert face.shape == (48, 48) and face.dtype == np.uint8


_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
          "I", "I;16", "I;16B", "F"]


@FAST
@given(st.sampled_from(_MODES), st.integers(1, 90), st.integers(1, 90), st.integers(0, 2**32 - 1))
def test_any_pil_mode_and_size_becomes_48x48_uint8(mode, width, height, seed):
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    image = image.convert(mode) if mode not in ("LAB", "La", "I;16B", "RGBa") else Image.new(mode, (width, height))
    face = to_face_array(image)
    assert face.shape == (48, 48) and face.dtype == np.uint8


_FILE_FORMATS = {  # format: modes it can store
    "PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "BMP": ["1", "L", "P", "RGB"],
    "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "F"],
    "WEBP": ["RGB", "RGBA"],
    "GIF": ["L", "P"],
}


@FAST
@given(st.sampled_from(sorted(_FILE_FORMATS)), st.data(), st.integers(1, 120), st.integers(1, 120),
       st.integers(0, 2**32 - 1), st.integers(0, 100))
def test_image_files_of_any_format_mode_and_size_load_or_are_refused_cleanly(tmp_path_factory, fmt, data, width, height,
                                                                               seed, cut_percent):
    mode = data.draw(st.sampled_from(_FILE_FORMATS[fmt]))
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    raw = encoded(Image.fromarray(noise, "RGB").convert(mode), fmt)
    truncate = data.draw(st.booleans())
    if truncate:
        raw = raw[: len(raw) * cut_percent // 100]
    path = tmp_path_factory.mktemp("img") / f"face.{fmt.lower()}"
    path.write_bytes(raw)
    try:
        face = load_face_file(path, min_side=MIN_FACE_SIDE)
    except DataError as error:
        assert error.reason in ("too small", "truncated", "empty file", "not an image", "corrupt"), error.reason
        assert str(error).startswith(str(path)) and "\n" not in str(error)
        if not truncate:
            assert error.reason == "too small" and min(width, height) < MIN_FACE_SIDE
        return
    assert face.shape == (48, 48) and face.dtype == np.uint8


# ---------------------------------------------------------------- split properties


@FAST
@given(st.lists(st.integers(0, 6), min_size=1, max_size=300), st.floats(0.01, 0.49), st.integers(0, 10_000))
def test_stratified_holdout_properties(labels, fraction, seed):
    labels = np.array(labels)
    mask = stratified_holdout(labels, fraction, seed)
    assert mask.dtype == bool and mask.shape == labels.shape
    np.testing.assert_array_equal(mask, stratified_holdout(labels, fraction, seed))  # reproducible
    for label in np.unique(labels):
        n = int(np.sum(labels == label))
        held = int(np.sum(mask & (labels == label)))
        if n == 1:
            assert held == 0  # a lone image stays in train
        else:
            assert 1 <= held <= n - 1  # every class on both sides
            assert abs(held - n * fraction) <= 0.5 or held in (1, n - 1)  # the fraction, up to rounding
