"""The behaviours the checks' failure messages name, one constant each.

The checks build their messages from these names, and the proof of sensitivity
(tests/regressions) and the known-defects ledger refer to the same constants, so a
reworded message changes both sides at once. Importing this module imports nothing else
(no Keras), so the catalogue can name a behaviour without loading a framework.
"""

from __future__ import annotations

#: checks.reference: a layer's output or state is not what the float64 equations give.
DIFFERS_FROM_REFERENCE = "differs from the NumPy reference"
#: checks.reference_grad: gradients through time differ from the NumPy backward pass.
DIFFERS_FROM_BACKWARD_PASS = "differ from the float64 NumPy backward pass through time"
#: checks.reference_grad: the gradient agrees near the end and is lost further back.
GRADIENT_STOPS = "gradient stops flowing back beyond step"
#: checks.reference_grad: every difference sits at a padded step.
AT_MASKED_STEPS = "every differing value is at a masked (padded) step"
#: checks.dropout: the measured dropped fraction is off the configured rate.
FRACTION_DIFFERS = "dropped fraction does not match the {which} rate"
#: checks.dropout: kept units are not rescaled (inverted dropout).
NOT_RESCALED = "kept units are not scaled by 1 / (1 - rate)"
#: checks.dropout: a layer redraws its input-dropout mask between steps of one call.
MASK_REDRAWN = "draws a new input-dropout mask within one call"
#: checks.dropout_calls: inference with dropout configured is not deterministic.
LEAKS_INTO_INFERENCE = "dropout leaks into inference"
#: checks.dropout_calls: a training call gives the inference output.
NOT_APPLIED_IN_TRAINING = "dropout is not applied in training"
#: checks.dropout_calls: two calls with one seed draw different masks.
SEED_DOES_NOT_FIX = "the seed does not fix the dropout masks"
#: checks.dropout_masks: the training output is not the reference fed the drawn masks.
AGAINST_DRAWN_MASKS = "in training, against the reference fed the masks its cells drew"
#: checks.contract_checks: padded steps change what a masked call returns.
MASK_LEAKS = "leak through the mask or the mask is ignored"
