import numpy as np

from ensemble.instances import appearance_similarity, build_instances, group_regions, regions
from ensemble.worksize import grow_mask, shrink_mask, work_shape


def textured(seed=0, shape=(120, 160)):
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def copy_move(image, src, dst, transform=lambda p: p):
    (y0, x0, h, w), (y1, x1) = src, dst
    out = image.copy()
    patch = transform(image[y0 : y0 + h, x0 : x0 + w])
    out[y1 : y1 + patch.shape[0], x1 : x1 + patch.shape[1]] = patch
    return out


def test_source_and_copy_form_one_instance_even_when_flipped():
    image = copy_move(textured(), (10, 10, 20, 20), (70, 100), lambda p: p[:, ::-1])
    fused = np.zeros(image.shape, np.float32)
    fused[10:30, 10:30] = fused[70:90, 100:120] = 0.9
    instances = build_instances(fused, image, 0.5, 0.001)
    assert len(instances) == 1 and instances[0].sum() == 800


def test_two_operations_stay_apart_when_their_content_differs():
    image = copy_move(textured(1), (5, 5, 20, 20), (5, 60))
    image = copy_move(image, (60, 10, 25, 15), (60, 120))
    fused = np.zeros(image.shape, np.float32)
    for y, x, h, w in [(5, 5, 20, 20), (5, 60, 20, 20), (60, 10, 25, 15), (60, 120, 25, 15)]:
        fused[y : y + h, x : x + w] = 1
    instances = build_instances(fused, image, 0.5, 0.0)
    assert sorted(int(m.sum()) for m in instances) == [750, 800]


def test_matcher_operations_group_regions_with_unrelated_looks():
    image = textured(2)
    fused = np.zeros(image.shape, np.float32)
    fused[10:30, 10:30] = fused[70:90, 100:120] = 1  # no real copy: appearance cannot link them
    op = fused > 0
    found = regions(fused > 0.5, 1)
    assert appearance_similarity(image, found[0], found[1]) < 0.5
    assert group_regions(found, image, [op]) == [[0, 1]]


def test_lonely_regions_join_the_largest_group_never_stand_alone():
    image = copy_move(textured(3), (10, 10, 20, 20), (10, 100))
    fused = np.zeros(image.shape, np.float32)
    fused[10:30, 10:30] = fused[10:30, 100:120] = 1
    fused[90:100, 40:50] = 1  # unpaired blob
    instances = build_instances(fused, image, 0.5, 0.0)
    assert len(instances) == 1 and instances[0].sum() == 900


def test_nothing_above_threshold_or_below_min_area_gives_no_instance():
    image = textured(4)
    fused = np.zeros(image.shape, np.float32)
    assert build_instances(fused, image, 0.5, 0.001) == []
    fused[0:2, 0:2] = 1
    assert build_instances(fused, image, 0.5, 0.01) == []


def test_work_size_round_trip_keeps_tiny_masks():
    assert work_shape(3000, 1000, 512) == (512, 171)
    assert work_shape(100, 50, 512) == (100, 50)
    mask = np.zeros((3000, 1000), bool)
    mask[5, 5] = True
    small = shrink_mask(mask, work_shape(3000, 1000, 512))
    assert small.sum() == 1
    big = np.zeros((3000, 1000), bool)
    big[1000:2000, 200:800] = True
    back = grow_mask(shrink_mask(big, (512, 171)), (3000, 1000))
    assert abs(int(back.sum()) - int(big.sum())) / big.sum() < 0.02
