"""Tests of the review classifier and its pooled bidirectional LSTM, with pytest-rnn.

The layer goes through the plugin's contract (its masking test is the one that matters
most here: padding must not change a review's vector); the classifier trains briefly on
real IMDB reviews from the plugin's ``imdb_subset`` fixture, keeps its test accuracy at
the reviewed baseline, and its trained Bi-LSTM is checked against the NumPy reference on
real padded reviews.
"""

from __future__ import annotations

import numpy as np
from sentiment import PooledBiLSTM, build_classifier, train

from pytest_rnn import (
    RecurrentLayerContract,
    assert_matches_reference,
    assert_param_count,
    expected_param_count,
)

UNITS, FEATURES = 3, 4  # the contract's small layer
NUM_WORDS, MAXLEN, EMBED, CLASSIFIER_UNITS = 500, 100, 16, 16


class TestPooledBiLSTMContract(RecurrentLayerContract):
    """Shapes, masking, serialization, trainability, dropout, gradients, params. The layer
    returns no states and keeps none between calls (a review is read whole)."""

    units = 2 * UNITS  # forward and backward outputs, concatenated
    input_dim = FEATURES
    supports_return_state = False
    supports_stateful = False
    supports_dropout = True
    param_count = expected_param_count("lstm", UNITS, FEATURES, bidirectional=True)

    def make_layer(self, dropout=0.0, **options):
        return PooledBiLSTM(UNITS, dropout=dropout, **options)


def test_classifier_has_the_parameters_of_its_parts():
    model = build_classifier(NUM_WORDS, embed_dim=EMBED, units=CLASSIFIER_UNITS)
    bilstm = expected_param_count("lstm", CLASSIFIER_UNITS, EMBED, bidirectional=True)
    assert_param_count(model.layers[1], bilstm)
    head = 2 * CLASSIFIER_UNITS + 1
    assert_param_count(model, NUM_WORDS * EMBED + bilstm + head)


def test_classifier_accuracy_stays_at_its_baseline(imdb_subset, rnn_seed, rnn_baseline):
    """Three epochs on 2,000 real reviews (half positive), scored on the 1,000 test reviews.

    A classifier that ignores the reviews is right on the majority label's share of them,
    up to three binomial standard errors sqrt(1/4 / n) of chance agreement above it; the
    trained one must beat that. The baseline's tolerance is the spread of the accuracy
    over nine seeds (the entry's note), so a run that float rounding on another CPU sends
    down another seed's path still passes."""
    data = imdb_subset(num_words=NUM_WORDS, maxlen=MAXLEN, n_train=2000, n_test=1000)
    model = build_classifier(NUM_WORDS, embed_dim=EMBED, units=CLASSIFIER_UNITS)
    train(model, data.x_train, data.y_train, epochs=3)
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    n = len(data.y_test)
    blind = max(data.y_test.mean(), 1 - data.y_test.mean()) + 3 * np.sqrt(0.25 / n)
    assert accuracy > blind, (
        f"test accuracy {accuracy:.3f}; a review-blind guess reaches {blind:.3f}")
    rnn_baseline.check("test_accuracy", accuracy, tolerance=0.05,
                       note="seeds 1-8 and this test's seed gave 0.715-0.763; a review-blind "
                       "guess gets 0.526")

    # the trained Bi-LSTM computes the LSTM equations on real padded reviews, padding masked:
    # the four shortest test reviews, the ones with the most padding
    reviews = data.x_test[np.argsort((data.x_test != 0).sum(axis=1))[:4]]
    embedded = model.layers[0](reviews)
    assert_matches_reference(model.layers[1].bilstm, embedded, mask=reviews != 0)
