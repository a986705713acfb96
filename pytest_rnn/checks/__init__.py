"""The Keras checks: what a recurrent layer must do, and the helpers that say what differs.

``compare`` (the one array comparison every check uses); the NumPy models of the cells
(``activations``: the one activation table; ``cell_model``: the step protocol and stacks;
``cell_models``: SimpleRNN, LSTM, GRU; ``conv_lstm_model``), run over sequences by
``recurrence`` for ``reference`` (float64 forward passes) and ``reference_grad`` (their
backward pass through time, or ``numeric_gradients``' central differences);
``step_model`` (:class:`NumpyCell`: any cell as its author's NumPy step);
``finite_differences`` (gradients of any layer against central differences); ``shapes``
(output structures); ``params`` (closed-form parameter counts); ``dropout`` (with
``dropout_probe``, ``dropout_calls``, ``dropout_masks``: masks read through gradients);
``cudnn`` (Keras's kernel routing); ``contract``
(:class:`RecurrentLayerContract` for any layer, over ``contract_declarations`` and
``contract_checks``, and ``dead_weights``: weight entries that never influence the
output); ``cross_backend`` (with ``cross_backend_case`` and
``cross_backend_compare``); ``models`` (the seeds' models and seeded weights). Importing a
module here imports Keras; importing this package does not.
"""

from pytest_rnn import lazy_submodules

__getattr__ = lazy_submodules(__name__, (
    'activations', 'cell_model', 'cell_models', 'compare', 'contract', 'contract_checks',
    'contract_declarations', 'conv_lstm_model', 'cross_backend', 'cross_backend_case',
    'cross_backend_compare', 'cudnn', 'dead_weights', 'dropout', 'dropout_calls', 'dropout_masks',
    'dropout_probe', 'finite_differences', 'models', 'numeric_gradients', 'params',
    'recurrence', 'reference', 'reference_grad', 'shapes', 'step_model'))
