"""Older Keras releases and other TensorFlow distributions, as the plugin sees them.

What differs between releases is either a known Keras defect (tests/test_ledger.py) or a
feature a release predates: those features are named once
(:data:`pytest_rnn.runtime.versions.KERAS_FEATURES`) and the tests pinning them skip
with a reason naming both releases. These tests pin that reasoning without installing
another release; the matrix run (noxfile.py) runs everything on real ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_rnn.checks.shapes import assert_output_structure
from pytest_rnn.plugin.markers import requires_keras
from pytest_rnn.runtime import versions


@pytest.mark.parametrize(("feature", "release", "lacks"), [
    ("use_cudnn", "3.0.5", True),
    ("use_cudnn", "3.1.1", True),
    ("use_cudnn", "3.2.0", False),
    ("use_cudnn", "3.15.1", False),
    ("keras.tree", "3.2.1", True),
    ("keras.tree", "3.3.0", False),
])
def test_a_missing_feature_names_the_release_and_the_first_release_with_it(
        feature, release, lacks):
    reason = versions.keras_lacks(feature, release)
    if not lacks:
        assert reason is None
        return
    since = versions.KERAS_FEATURES[feature][0]
    assert reason.startswith(f"Keras {release} predates ") and f"(added in Keras {since})" in reason


def test_an_unknown_feature_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown Keras feature 'nope'; known: \["):
        versions.keras_lacks("nope")


def test_requires_keras_skips_only_on_releases_without_the_feature(monkeypatch):
    monkeypatch.setattr(versions, "package_version",
                        lambda name: "3.1.1" if name == "keras" else None)
    mark = requires_keras("use_cudnn")
    assert mark.args == (True,)
    assert mark.kwargs["reason"].startswith("Keras 3.1.1 predates LSTM/GRU's use_cudnn")
    monkeypatch.setattr(versions, "package_version",
                        lambda name: "3.2.0" if name == "keras" else None)
    assert requires_keras("use_cudnn").args == (False,)
    assert not versions.keras_at_least("3.2.1") and versions.keras_at_least("3.2.0")


@pytest.mark.parametrize("distribution", ["tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                                          "tensorflow-intel", "tf-nightly"])
def test_every_tensorflow_distribution_is_the_same_tensorflow(monkeypatch, distribution):
    installed = {distribution: "2.16.2", "keras": "3.0.5"}
    monkeypatch.setattr(versions, "package_version", installed.get)
    assert versions.tensorflow_version() == "2.16.2"
    assert versions.versions()["tensorflow"] == "2.16.2"


def test_a_leaf_that_is_not_a_shape_is_reported_not_a_crash():
    """Keras < 3.3 reports a stacked RNN's state shapes as bare ints."""
    with pytest.raises(AssertionError,
                       match=r"element 1 \(state\) has shape <not a shape: int 4>, expected "
                             r"\(2, 4\)"):
        assert_output_structure([np.zeros((2, 3)), 4], [("output", (2, 3)), ("state", (2, 4))],
                                what="stacked compute_output_shape")
