"""Tiny object copies in figures saved as JPEG after forging (issue 12): the exact small-copy hashes miss them (the
two JPEG errors break exactness), the low-passed, quantised search (``small_copies.jpeg_step``) finds them; its
look-alikes (halo arcs, smooth blobs) must still be turned down."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from models.matcher import MatcherParams, match_image
from models.matcher.smallcopies import jpeg_copy_candidates
from shared.config import param
from shared.metric import of1_masks
from shared.synth.case import jpeg_roundtrip
from shared.synth.config import case_rng, load_config
from shared.synth.scenarios import make_scene, micro_panel

SEED = 777  # not the bench's synthetic seed: these scenes are no bench figure


def with_small_copies(verify: dict | None = None, **changes) -> MatcherParams:
    matcher = param("matcher")
    return MatcherParams.from_dict(
        {
            **matcher,
            "small_copies": {**matcher["small_copies"], **changes},
            "verify": {**matcher["verify"], **(verify or {})},
        }
    )


def tiny_copy_scene(index: int):
    """A ``tiny_copy`` scenario scene: one micrograph, an object of 0.03-0.2 % of it pasted once or twice."""
    config = replace(load_config("demo"), seed=SEED)
    return make_scene(case_rng(SEED, "train", 10000 + index), config, "tiny_copy")


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


def test_a_tiny_copy_saved_as_jpeg_is_found(params):
    """An electron micrograph whose 250-px object was pasted twice, then saved at quality 94: the copies differ from
    their source by two JPEG errors, so only the JPEG search proposes them; verification accepts them."""
    scene = tiny_copy_scene(35)
    truth = scene.operations[0].mask
    forged = jpeg_roundtrip(scene.forged, 94, gray=False)
    assert not match_image(forged, with_small_copies(jpeg_step=0.0)).operations  # the case (missed without it)
    result = match_image(forged, params)
    assert len(result.operations) == 1, [(v.origin, v.transform, v.reason) for v in result.candidates]
    assert of1_masks(result.operations, [truth]) >= 0.5
    assert all(v.origin == "exact" for v in result.candidates if v.accepted)
    # the same figure before the copy, saved the same way, holds nothing
    assert not match_image(jpeg_roundtrip(scene.authentic, 94, gray=False), params).operations


@pytest.mark.parametrize("index", [26, 34])
def test_look_alikes_re_saved_are_not_copies(params, index):
    """Phase-contrast cells (bright halos) and their like re-saved as JPEG: the search finds low-passed look-alikes
    (halo arcs under a flip or turn) that pass a single comparison's tests; they hold too little detail or agree
    about as well with other places, and are turned down."""
    resaved = jpeg_roundtrip(tiny_copy_scene(index).authentic, 70, gray=False)
    result = match_image(resaved, params)
    assert not result.operations, [(v.origin, v.transform, v.samples) for v in result.candidates if v.accepted]


def test_a_halo_look_alike_is_no_copy_next_to_a_real_one(params):
    """A phase-contrast panel with a disc pasted elsewhere, saved at quality 80: the search also proposes two halo
    arcs far from the disc that agree under a half turn, sharply and with 7 samples of detail; regions of the
    same shape elsewhere in this figure find look-alikes about as close, so it is no copy (like with like)."""
    image = micro_panel(np.random.default_rng(0), "brightfield", 360, 420)
    source = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(source, (110, 120), 12, 1, -1)
    source = source.astype(bool)
    copy = np.roll(source, (130, 190), axis=(0, 1))
    forged = image.copy()
    forged[copy] = np.roll(image, (130, 190), axis=(0, 1))[copy]
    resaved = jpeg_roundtrip(forged, 80, gray=False)
    claims = match_image(resaved, with_small_copies(verify={"jpeg_chance_probes": 0})).operations
    assert any(not (op & (source | copy)).any() for op in claims)  # the case: a look-alike claimed without the check
    for op in match_image(resaved, params).operations:
        assert (op & (source | copy)).any()


def test_the_search_needs_a_jpeg_ghost(params):
    """Without a sign of JPEG (no compression error field) the search does not run: exact copies are the
    exact hashes' job."""
    scene = tiny_copy_scene(35)
    from models.matcher.masking import content_mask
    from models.matcher.panels import find_panels
    from models.matcher.prepare import prepare

    work = prepare(scene.forged, params.image)
    layout = find_panels(work, params.panels)
    content, _ = content_mask(work, layout, params.masking)
    assert jpeg_copy_candidates(work, layout, content, params.small_copies, 14.0, None) == []
