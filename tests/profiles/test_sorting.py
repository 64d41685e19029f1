"""The packed multi-key sort gives exactly np.lexsort's order, ties and huge ranges included."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from upstack.profiles.sorting import lexsort


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_packed_sort_equals_numpy_lexsort(data):
    n = data.draw(st.integers(0, 40))
    keys = tuple(
        np.asarray(data.draw(st.lists(st.one_of(st.integers(-5, 5), st.sampled_from([-(2**62), 2**40, 2**62])),
                                      min_size=n, max_size=n)), dtype=np.int64)
        for _ in range(data.draw(st.integers(1, 4)))
    )
    assert np.array_equal(lexsort(keys), np.lexsort(keys))
