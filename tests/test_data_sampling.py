"""TSN segment sampling: properties against plainly written references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnvideo.data import plan_snippets, segment_positions


def segment_bounds(p: int, t: int, k: int) -> tuple[int, int]:
    """Integer positions of segment k: [floor(kP/T), max(floor(kP/T)+1, floor((k+1)P/T)))."""
    lo = (k * p) // t
    return lo, max(lo + 1, ((k + 1) * p) // t)


def centre_reference(p: int, t: int, clip: int = 0, clips: int = 1) -> list[int]:
    """floor((k + (c + 1/2) / n) * P / T), with exact fractions."""
    return [int((k + Fraction(2 * clip + 1, 2 * clips)) * Fraction(p, t)) for k in range(t)]


@given(p=st.integers(1, 400), t=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_random_positions_in_range_sorted_one_per_segment(p, t, seed):
    g = torch.Generator().manual_seed(seed)
    pos = segment_positions(p, t, random=True, generator=g)
    assert pos.shape == (t,) and pos.dtype == np.int64
    assert pos.min() >= 0 and pos.max() < p
    assert np.all(np.diff(pos) >= 0)
    for k in range(t):
        lo, hi = segment_bounds(p, t, k)
        assert lo <= pos[k] < hi
    if p >= t:  # segments are disjoint, so positions strictly increase
        assert np.all(np.diff(pos) > 0)


@given(p=st.integers(1, 400), t=st.integers(1, 40), clips=st.integers(1, 5), data=st.data())
def test_test_positions_are_centres_of_views(p, t, clips, data):
    clip = data.draw(st.integers(0, clips - 1))
    pos = segment_positions(p, t, clip_index=clip, num_clips=clips)
    assert pos.tolist() == centre_reference(p, t, clip, clips)
    assert pos.min() >= 0 and pos.max() < p and np.all(np.diff(pos) >= 0)


def test_random_draw_reaches_every_position_of_a_segment():
    g = torch.Generator().manual_seed(0)
    seen = [set() for _ in range(3)]
    for _ in range(300):
        for k, v in enumerate(segment_positions(12, 3, random=True, generator=g).tolist()):
            seen[k].add(v)
    assert seen == [{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}]


def test_test_views_are_distinct_when_segments_are_long():
    views = np.stack([segment_positions(100, 4, clip_index=c, num_clips=5) for c in range(5)])
    assert all(len(set(views[:, k].tolist())) == 5 for k in range(4))
    assert np.all(views[:, 1] >= 25) and np.all(views[:, 1] < 50)


def test_short_video_rule_repeats_positions_in_order():
    assert segment_positions(3, 8).tolist() == centre_reference(3, 8)
    assert segment_positions(3, 8, random=True).tolist() == [(k * 3) // 8 for k in range(8)]
    assert segment_positions(1, 5).tolist() == [0] * 5


@given(
    frames=st.integers(2, 300),
    t=st.integers(1, 16),
    length=st.integers(1, 10),
    random=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_flow_stack_in_range_consecutive_and_centred(frames, t, length, random, seed):
    g = torch.Generator().manual_seed(seed)
    plan = plan_snippets(frames, t, length, flow=True, random=random, generator=g)
    fields, rgb = plan.flow_fields, plan.rgb_frames
    assert fields.shape == (t, length) and rgb.shape == (t,)
    assert fields.min() >= 0 and fields.max() <= frames - 2  # F - 1 fields
    assert rgb.min() >= 0 and rgb.max() <= frames - 1
    assert np.all(np.diff(rgb) >= 0)
    if frames > length:  # the stack fits: L consecutive fields, RGB frame at its centre
        assert np.all(np.diff(fields, axis=1) == 1)
        assert np.array_equal(rgb, fields[:, length // 2])
    else:  # too short: fields clamped to the last one, never out of range
        assert np.array_equal(fields[:, 0], np.zeros(t, dtype=np.int64))


@given(frames=st.integers(1, 300), t=st.integers(1, 16), random=st.booleans())
def test_rgb_only_plan_uses_every_frame_as_a_position(frames, t, random):
    plan = plan_snippets(frames, t, 5, flow=False, random=random)
    assert plan.flow_fields is None
    if not random:
        assert plan.rgb_frames.tolist() == centre_reference(frames, t)
    assert plan.rgb_frames.min() >= 0 and plan.rgb_frames.max() < frames


def test_plan_errors():
    with pytest.raises(ValueError, match="flow needs at least 2 frames, got 1"):
        plan_snippets(1, 3, 5, flow=True)
    with pytest.raises(ValueError, match="num_segments: expected a positive int, got int 0"):
        segment_positions(10, 0)
    with pytest.raises(ValueError, match=r"clip_index: expected an int in \[0, 2\), got 2"):
        segment_positions(10, 3, clip_index=2, num_clips=2)
    with pytest.raises(ValueError, match="num_frames"):
        plan_snippets(0, 3, flow=False)
