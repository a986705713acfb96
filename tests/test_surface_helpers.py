"""The helpers behind the ConvLSTM and stacked-cell suites, on inputs made by hand.

Closed forms are checked against values worked out on paper, bad arguments against the
one-line errors they must raise, and the mask assertions against masks that are wrong
in one way each (size, sharing, values, rate), so every message is seen once.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_rnn import conv_output_spatial, expected_output_structure, expected_param_count
from pytest_rnn.checks.dropout import CellMasks, assert_cell_mask_rates, assert_cell_masks_sized


def test_conv_output_spatial_closed_forms():
    # valid: floor((n - d(k-1) - 1) / s) + 1; same: ceil(n / s)
    assert conv_output_spatial((4, 5), 3) == (2, 3)
    assert conv_output_spatial((4, 5), 3, strides=2) == (1, 2)
    assert conv_output_spatial((4, 5), 2, dilation_rate=2) == (2, 3)
    assert conv_output_spatial((4, 5), 3, strides=(2, 1), padding="same") == (2, 5)
    assert conv_output_spatial((None, 7), 3, padding="same", strides=3) == (None, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spatial": (2, 4), "kernel_size": 3}, "spatial axis 0 has 2 positions, fewer than"),
        ({"spatial": (4,), "kernel_size": (3, 3)}, "kernel_size must be a positive integer or"),
        ({"spatial": (4,), "kernel_size": 3, "padding": "causal"}, "padding must be 'valid'"),
        ({"spatial": (4,), "kernel_size": 3, "strides": 0}, "strides must be a positive"),
    ],
)
def test_conv_output_spatial_refuses_what_cannot_be_computed(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        conv_output_spatial(**kwargs)


def test_conv_lstm_param_count_closed_form():
    # 4 gates x filters x (kernel positions x (channels + filters) + 1 bias)
    assert expected_param_count("conv_lstm2d", 2, 3, kernel_size=3) == 4 * 2 * (9 * 5 + 1)
    assert expected_param_count("conv_lstm1d", 2, 3, kernel_size=(2,), use_bias=False) == 80
    assert expected_param_count("conv_lstm3d", 1, 1, kernel_size=2, bidirectional=True) == 136
    with pytest.raises(ValueError, match="needs kernel_size"):
        expected_param_count("conv_lstm2d", 2, 3)
    with pytest.raises(ValueError, match="kernel_size applies to the ConvLSTM kinds only"):
        expected_param_count("lstm", 2, 3, kernel_size=3)
    with pytest.raises(ValueError, match="tuple of 3 positive integers"):
        expected_param_count("conv_lstm3d", 2, 3, kernel_size=(3, 3))


def test_conv_lstm_output_structure():
    got = expected_output_structure(
        "conv_lstm2d", batch=2, steps=3, units=4, spatial=(4, 4), kernel_size=3,
        return_sequences=True, return_state=True, data_format="channels_first",
    )
    assert got == [("output", (2, 3, 4, 2, 2)), ("h", (2, 4, 2, 2)), ("c", (2, 4, 2, 2))]
    concat = expected_output_structure(
        "conv_lstm1d", batch=None, steps=3, units=2, spatial=(5,), kernel_size=2,
        padding="same", bidirectional=True,
    )
    assert concat == [("output", (None, 5, 4))]
    with pytest.raises(ValueError, match="needs spatial"):
        expected_output_structure("conv_lstm2d", batch=2, steps=3, units=4, kernel_size=3)


def _cell(**overrides) -> CellMasks:
    rng = np.random.default_rng(0)
    scale = 1 / 0.7

    def masks(count, shape):
        return tuple((rng.random(shape) >= 0.3) * scale for _ in range(count))

    fields = {
        "index": 1, "cell": "GRUCell 'g'", "dropout": 0.3, "recurrent_dropout": 0.0,
        "gate_count": 3, "batch": 64, "input_shape": (4,), "state_shape": (3,),
        "inputs": masks(3, (64, 4)), "recurrent": None,
    }
    fields.update(overrides)
    return CellMasks(**fields)


def test_cell_masks_that_are_right_pass():
    assert_cell_masks_sized([_cell()])
    assert_cell_mask_rates([_cell()])


def test_a_mask_sized_from_another_tensor_is_named():
    wrong = _cell(inputs=tuple(np.ones((64, 5)) for _ in range(3)))
    with pytest.raises(AssertionError, match=r"cell 1 \(GRUCell 'g'\) dropout: masks of shape "
                       r"\(64, 5\), expected \(64, 4\) \(batch, the shape of its input\)"):
        assert_cell_masks_sized([wrong])


def test_missing_counted_and_shared_masks_are_named():
    with pytest.raises(AssertionError, match="dropout=0.3 drew no mask in training"):
        assert_cell_masks_sized([_cell(inputs=None)])
    with pytest.raises(AssertionError, match="1 masks, expected 3 .one per gate"):
        assert_cell_masks_sized([_cell(inputs=_cell().inputs[:1])])
    shared = _cell().inputs[0]
    with pytest.raises(AssertionError, match="gates 0 and 1 share one mask"):
        assert_cell_masks_sized([_cell(inputs=(shared, shared, _cell().inputs[2]))])


def test_masks_at_the_wrong_rate_or_scale_are_named():
    kept = _cell(inputs=tuple(np.full((64, 4), 1 / 0.7) for _ in range(3)))
    with pytest.raises(AssertionError, match=r"dropped 0 of 768 units = 0.0000, expected 0.3"):
        assert_cell_mask_rates([kept])
    unscaled = _cell(inputs=tuple((m > 0).astype(float) for m in _cell().inputs))
    with pytest.raises(AssertionError, match=r"neither 0 nor 1/\(1-rate\) = 1.4286"):
        assert_cell_mask_rates([unscaled])
