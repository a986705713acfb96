def test_seed(rnn_seed, rnn_device):
    assert rnn_seed >= 0
