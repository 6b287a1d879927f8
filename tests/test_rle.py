import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from shared import rle
from tests import reference_metric as ref

masks = st.tuples(st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda hw: arrays(np.uint8, hw, elements=st.integers(0, 1))
)


def test_encode_is_column_major_one_based():
    mask = np.zeros((3, 4), np.uint8)
    mask[0, 0] = mask[1, 0] = 1  # first column, rows 0-1 -> pixels 1, 2
    mask[2, 1] = 1  # column 1, row 2 -> pixel 6
    mask[0, 2] = 1  # column 2, row 0 -> pixel 7, joins pixel 6
    assert rle.encode(mask) == "[1, 2, 6, 2]"


def test_empty_mask_encodes_as_empty_list_and_back():
    assert rle.encode(np.zeros((5, 7), np.uint8)) == "[]"
    assert not rle.decode("[]", (5, 7)).any()


@settings(max_examples=300, deadline=None)
@given(masks)
def test_encode_matches_reference_and_round_trips(mask):
    text = rle.encode(mask)
    assert text == ref.encode(mask)
    np.testing.assert_array_equal(rle.decode(text, mask.shape), mask)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[5, 1, 3, 1]", rle.MSG_ASCENDING),
        ("[1, 2, 3]", rle.MSG_ODD),
        ("[1, 5, 3, 1]", rle.MSG_OVERLAP),
        ("[4, 1, 2]", rle.MSG_ASCENDING),  # ascending is checked before the odd count, as officially
    ],
)
def test_official_error_messages(text, message):
    with pytest.raises(rle.RLEError) as info:
        rle.decode(text, (4, 4))
    assert str(info.value) == message


@pytest.mark.parametrize("text", ["", "-", "nan", "[1, [2]]", '"5"', '{"a": 1}', "[1, 99999999999]", "[1, null]"])
def test_text_the_official_decoder_crashes_on_is_an_rle_error(text):
    with pytest.raises(rle.RLEError):
        rle.decode(text, (4, 4))


@pytest.mark.parametrize(
    ("text", "expected_pixels"),
    [
        ("[1, 0, 3, 2]", [2, 3]),  # zero-length run accepted
        ("[3, 0, 3, 2]", [2, 3]),  # equal starts accepted when the first run is empty
        ("[15, 10]", [14, 15]),  # run past the image end is clipped
        ("[0, 3]", []),  # start 0 paints nothing (Python slice -1:2)
        ("[0, 20]", [15]),  # ... except the last pixel when the slice reaches it
        (" [2, 1] ", [1]),  # surrounding spaces
        ("[2.9, 1.7]", [1]),  # fractional values truncate like int32 conversion
        ('["2", "1"]', [1]),  # numeric strings are converted, as numpy does
        ("[1, 2, 3, 1]", [0, 1, 2]),  # touching runs are fine
    ],
)
def test_lenient_cases_of_the_official_decoder(text, expected_pixels):
    flat = rle.decode(text, (4, 4)).T.reshape(-1)
    assert np.flatnonzero(flat).tolist() == expected_pixels
    np.testing.assert_array_equal(rle.decode(text, (4, 4)), ref.decode(text, (4, 4)))


run_lists = st.lists(st.integers(-3, 30), min_size=0, max_size=9)


@settings(max_examples=1000, deadline=None)
@given(run_lists, st.integers(1, 5), st.integers(1, 5))
def test_decode_agrees_with_reference_on_arbitrary_run_lists(values, height, width):
    text = str(values)
    try:
        expected = ref.decode(text, (height, width))
    except ref.ReferenceDecodeError as exc:
        with pytest.raises(rle.RLEError) as info:
            rle.decode(text, (height, width))
        assert str(info.value) == str(exc)
        return
    np.testing.assert_array_equal(rle.decode(text, (height, width)), expected)


def test_format_annotation_drops_empty_and_duplicate_instances():
    a = np.zeros((4, 4), np.uint8)
    a[0, 0] = 1
    b = np.zeros((4, 4), np.uint8)
    b[3, 3] = 1
    empty = np.zeros((4, 4), np.uint8)
    assert rle.format_annotation([a, empty, b, a.copy()]) == "[1, 1];[16, 1]"
    assert rle.format_annotation([empty]) == rle.AUTHENTIC
    assert rle.format_annotation([]) == rle.AUTHENTIC


def test_decode_instances():
    masks = rle.decode_instances("[1, 1];[16, 1]", (4, 4))
    assert [int(m.sum()) for m in masks] == [1, 1]
    assert rle.decode_instances("authentic", (4, 4)) == []
