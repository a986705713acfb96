"""The Keras checks: what a recurrent layer must do, and the helpers that say what differs.

``compare`` (the one array comparison every check uses), ``reference`` (float64
NumPy forward passes), ``reference_grad`` (their backward pass through time),
``finite_differences`` (gradients of any layer against central differences),
``shapes`` (output structures), ``params`` (closed-form parameter counts), ``dropout``
(masks read through gradients), ``cudnn`` (Keras's kernel routing), ``contract``
(:class:`RecurrentLayerContract` for any layer) and ``models`` (the seeds' models and
seeded weights). Importing a module here imports Keras; importing this package does not.
"""

from pytest_rnn import lazy_submodules

__getattr__ = lazy_submodules(__name__, (
    'compare', 'contract', 'cudnn', 'dropout', 'finite_differences', 'models', 'params',
    'reference', 'reference_grad', 'shapes'))
