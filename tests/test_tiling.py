"""The balanced tile grid of `inference.stylizer` (pure functions)."""

import itertools
import math

import pytest

from uegan_tf.inference.stylizer import spread_starts
from uegan_tf.inference.stylizer import tile_grid


def _square_cost(h, w, tile, overlap):
    """Pixels computed by the previous layout: square tiles, stride
    tile - overlap, the last tile flush with the border."""

    def count(length):
        t = min(tile, length)
        if length <= t:
            return 1
        return len(range(0, length - t, t - overlap)) + 1

    return count(h) * min(tile, h) * count(w) * min(tile, w)


def test_1080p_grid_by_hand():
    # Budget: a 496 x 496 tile (246,016 px), overlap 32.
    # Two rows: tile height ceil4((1080 + 32) / 2) = 556; widest tile of
    # that height 246016 // 556 = 442 -> 440 (multiple of 4); columns
    # ceil((1920 - 32) / (440 - 32)) = 5; even width ceil4((1920 + 4*32)/5)
    # = ceil4(409.6) = 412. Starts spread evenly: (1080-556)/1 = 524 and
    # (1920-412)/4 = 377.
    th, tw, ys, xs = tile_grid(1080, 1920, 496 * 496, 32)
    assert (th, tw) == (556, 412)
    assert ys == [0, 524]
    assert xs == [0, 377, 754, 1131, 1508]
    cost = len(ys) * th * len(xs) * tw
    assert cost == 2 * 556 * 5 * 412 == 2_290_720  # 1.105x the image
    # The square layout: 3 rows x 5 columns of 496^2 = 1.78x the image.
    assert _square_cost(1080, 1920, 496, 32) == 15 * 496 * 496


def test_small_and_explicit_tiles_by_hand():
    assert tile_grid(100, 80, 10_000, 32) == (100, 80, [0], [0])
    # --tile=128 bounds both sides: 224 = 2 x 128 - 32, 320 -> 3 columns
    # of ceil4((320 + 64) / 3) = 128.
    assert tile_grid(224, 320, 128 * 128, 32, max_side=128) == (
        128,
        128,
        [0, 96],
        [0, 96, 192],
    )
    assert spread_starts(300, 128, 3) == [0, 86, 172]
    assert spread_starts(100, 128, 3) == [0]


@pytest.mark.parametrize(
    "h,w,tile,overlap,max_side",
    [
        (h, w, t, o, ms)
        for (h, w), t, o, ms in itertools.product(
            [(129, 500), (1080, 1920), (1920, 1080), (3000, 4000), (257, 258)],
            [128, 256, 496],
            [16, 32],
            [False, True],
        )
    ],
)
def test_grid_invariants(h, w, tile, overlap, max_side):
    budget = min(tile, h) * min(tile, w)
    th, tw, ys, xs = tile_grid(
        h, w, budget, overlap, max_side=tile if max_side else None
    )
    assert th * tw <= budget
    if max_side:
        assert th <= tile and tw <= tile
    for starts, t, length in ((ys, th, h), (xs, tw, w)):
        assert starts[0] == 0 and starts[-1] + t == length  # covers
        assert t == length or t % 4 == 0
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(0 < g <= t - overlap for g in gaps)  # overlap kept
    cost = len(ys) * th * len(xs) * tw
    assert cost <= _square_cost(h, w, tile, overlap)
    if not max_side and h * w > budget:
        # Near the floor: a tile of <= B pixels contributes at most
        # (sqrt(B) - overlap)^2 new pixels, so covering h*w costs about
        # h*w*B / (sqrt(B) - overlap)^2 computed pixels in the interior
        # (borders need no overlap, so small images can go below it).
        floor = h * w * budget / (math.sqrt(budget) - overlap) ** 2
        assert cost <= 1.05 * floor, cost / floor


def test_impossible_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="no tiling of 400x300"):
        tile_grid(300, 400, 30 * 30, 32)
