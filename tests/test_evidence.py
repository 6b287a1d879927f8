"""Repetition evidence (shared/evidence.py) and its stage (shared/evidence_maps.py)."""

import cv2
import numpy as np
import pytest

from models.matcher.panelpairs import TRANSFORMS, transform_array
from shared.evidence import (
    CHANNELS,
    FREQUENCIES,
    SYMMETRIES,
    EvidenceSpec,
    canonical,
    compute_evidence,
    describe,
    symmetry_action,
)
from shared.evidence_maps import EvidenceStore, write_evidence
from tests.conftest import build_kaggle_root

SOURCE = (slice(50, 110), slice(40, 100))
COPY = (slice(200, 260), slice(300, 360))
TURNS = {name: lambda a, n=name: transform_array(a, n) for name in TRANSFORMS}  # the matcher's flips/turns


def texture(seed: int = 0, shape=(400, 500)) -> np.ndarray:
    """Grey, lightly blurred noise: every patch textured, no two alike."""
    noise = np.random.default_rng(seed).normal(128, 30, shape).clip(0, 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.0)


def copied(turn: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    image = texture(seed)
    image[COPY] = TURNS[turn](image[SOURCE])
    truth = np.zeros(image.shape, bool)
    truth[SOURCE] = truth[COPY] = True
    return image, truth


@pytest.mark.parametrize("turn", list(TURNS))
def test_exact_copies_under_every_symmetry_light_up_source_and_copy(turn):
    image, truth = copied(turn)
    evidence = compute_evidence(image).astype(np.float32) / 255
    assert evidence.shape == (*image.shape, len(CHANNELS))
    repeat, coherence = evidence[..., 0], evidence[..., 1]
    assert repeat[truth].mean() > 0.95 and coherence[truth].mean() > 0.8
    assert repeat[~truth].mean() < 0.02 and (repeat * coherence)[~truth].max() < 0.5


def test_recompressed_copy_keeps_evidence_that_untouched_texture_lacks():
    image, truth = copied("flip_h")
    _, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    jpeg = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    evidence = compute_evidence(jpeg).astype(np.float32) / 255
    product = evidence[..., 0] * evidence[..., 1]
    assert product[truth].mean() > 10 * max(product[~truth].mean(), 1e-3)


def test_authentic_texture_flat_images_and_text_on_paper_carry_no_evidence():
    assert (compute_evidence(texture(3))[..., 0] > 128).mean() < 0.001
    assert not compute_evidence(np.full((80, 90, 3), 200, np.uint8)).any()
    assert compute_evidence(np.zeros((5, 7), np.uint8)).shape == (5, 7, len(CHANNELS))
    page = np.full((200, 400), 255, np.uint8)
    for x in (20, 140, 260):  # the same label three times: letters repeat by nature
        cv2.putText(page, "KD 54", (x, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2)
    assert not compute_evidence(page)[..., 0].any()


def test_canonical_descriptor_is_the_same_for_every_symmetry_of_a_patch():
    patches = texture(5, (40, 40)).astype(np.float32)
    coefficients, _ = describe(patches, 8)
    c = coefficients.reshape(-1, len(FREQUENCIES))[:50]
    base, _ = canonical(c, tuple(SYMMETRIES))
    for name in SYMMETRIES:
        order, sign = symmetry_action(name)
        moved, _ = canonical(c[:, order] * sign, tuple(SYMMETRIES))
        assert np.allclose(moved, base, atol=1e-5), name


def test_bad_input_and_unknown_settings_fail_clearly():
    with pytest.raises(ValueError, match="expected an"):
        compute_evidence(np.zeros((4, 4, 3, 2), np.uint8))
    with pytest.raises(KeyError, match="unknown key"):
        EvidenceSpec.from_dict({"patchsize": 8})
    with pytest.raises(ValueError, match="unknown"):
        EvidenceSpec(symmetries=("identity", "shear"))


def test_stage_writes_every_image_once_and_refuses_another_spec(tmp_path, caplog):
    root = build_kaggle_root(tmp_path / "data")
    png = (root / "test_images" / "46.png").read_bytes()
    (root / "test_images" / "46.png").write_bytes(png[: len(png) // 2])  # header fine, pixels truncated
    write_evidence(root, tmp_path / "evidence", EvidenceSpec(), jobs=1)
    store = EvidenceStore(tmp_path / "evidence")
    assert "train/forged/100" in store and "test/45" in store
    assert store["test/45"].shape == (30, 40, len(CHANNELS)) and store["test/45"].dtype == np.uint8
    assert not store["test/46"].any() and "46.png: no evidence" in caplog.text  # zeros, logged with the file
    store.check_spec(EvidenceSpec())
    with pytest.raises(ValueError, match="rerun the stage"):
        store.check_spec(EvidenceSpec(patch=6))
    with pytest.raises(FileNotFoundError, match="run the evidence stage"):
        EvidenceStore(tmp_path / "absent")


def test_compiled_partner_search_equals_a_plain_pairwise_restatement():
    """``_best_partners`` and ``_agreeing_neighbours`` (numba) against the rule written out pair by pair."""
    from shared.evidence import _agreeing_neighbours, _best_partners, _composition, symmetry_matrix

    rng = np.random.default_rng(3)
    names = tuple(SYMMETRIES)
    n, f, steps, noise, tolerance, min_offset = 300, 6, 3, np.float32(12.0), np.float32(0.1), 3.0
    canon = rng.normal(size=(n, f)).astype(np.float32)
    canon[1::7] = canon[0::7][: len(canon[1::7])]  # exact partners one place apart in the sorted order
    norms = rng.uniform(1, 50, n).astype(np.float32)
    h, w = 40, 30
    flat = rng.choice(h * w, n, replace=False)
    ys, xs = (v.astype(np.int32) for v in np.divmod(flat, w))
    to_canon = rng.integers(0, len(names), n)
    compose = _composition(names)
    best, partner, symmetry = _best_partners(
        canon, norms, ys, xs, to_canon, compose, steps, noise, tolerance, min_offset
    )

    want_best, want_partner = np.full(n, np.inf), np.full(n, -1)
    for step in range(1, steps + 1):
        for me, other in [(k, k + step) for k in range(n - step)] + [(k + step, k) for k in range(n - step)]:
            if max(abs(ys[me] - ys[other]), abs(xs[me] - xs[other])) < min_offset:
                continue
            energy = float(norms[me]) * float(norms[other])
            value = float(((canon[me].astype(float) - canon[other]) ** 2).sum()) * energy / (noise + tolerance * energy)
            if value < want_best[me]:
                want_best[me], want_partner[me] = value, other
    np.testing.assert_allclose(best, want_best, rtol=1e-5)
    assert (partner == want_partner).mean() > 0.99  # float32 vs float64 may reorder near-ties
    same = partner == want_partner
    assert (symmetry[same] == compose[to_canon[same], to_canon[partner[same]]]).all()
    planted = np.arange(1, n, 7)
    far = np.maximum(abs(ys[planted] - ys[planted - 1]), abs(xs[planted] - xs[planted - 1])) >= min_offset
    assert far.sum() > 30 and (best[planted[far]] == 0).all()  # a planted exact partner is found

    # coherence: a full 10 x 20 grid whose left half is copied (identity) onto its right half, the rest random
    h, w = 10, 20
    ys, xs = (v.astype(np.int32).ravel() for v in np.mgrid[:h, :w])
    n = h * w
    partner = rng.integers(0, n, n)
    symmetry = rng.integers(0, len(names), n)
    left = xs < w // 2
    partner[left] = np.flatnonzero(left) + w // 2
    symmetry[left] = names.index("identity")
    found = rng.random(n) < 0.9
    matrices = np.stack([symmetry_matrix(name) for name in names]).astype(np.int64)
    agree = _agreeing_neighbours(ys, xs, h, w, partner, symmetry, found, matrices, 2)
    interior = left & (ys >= 2) & (ys < h - 2) & (xs >= 2) & (xs < w // 2 - 2)
    assert agree[interior & found].mean() > 0.5
    at = {(int(y), int(x)): i for i, (y, x) in enumerate(zip(ys, xs, strict=True))}
    for i in range(n):
        count = 0
        for dy, dx in ((-2, 0), (2, 0), (0, -2), (0, 2)):
            o = at.get((int(ys[i]) + dy, int(xs[i]) + dx))
            if o is None or not (found[i] and found[o]) or symmetry[i] != symmetry[o]:
                continue
            shift = matrices[symmetry[i]] @ np.array([dy, dx])
            moved = np.array([ys[partner[i]], xs[partner[i]]]) + shift
            count += np.abs(moved - [ys[partner[o]], xs[partner[o]]]).max() <= 1
        assert agree[i] == count / 4
