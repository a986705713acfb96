"""Cross-backend equivalence: the same layer, weights and inputs on every installed backend.

Keras picks its backend once, at import, so each backend computes in its own
subprocess (``KERAS_BACKEND=<name> python -m pytest_rnn.checks.cross_backend IN OUT``).
The parent writes one JSON file of :class:`Case` specs; every subprocess computes
all of them and writes its results; the parent compares them pairwise with
:mod:`pytest_rnn.checks.compare`, so a difference reads::

    jax vs tensorflow: gru_masked dL/d w0 kernel: 3 of 36 values differ (...); worst at
    row 2, column 5: jax 0.0123, tensorflow 0.0119, |diff| 0.0004

What a case computes (identically on every backend, from the case's seed):

* the layer from its factory (``module:attribute`` or a file path, and keyword
  arguments), built for the input shape; every trainable weight drawn uniformly from
  ``[-WEIGHT_SCALE, WEIGHT_SCALE]`` with NumPy from ``seed``, in ``layer.trainable_weights``
  order (the same on every backend: the weight paths are compared too);
* the inputs from ``seed`` (standard normals), the mask and initial states the case gives;
* every tensor the call returns (output and states), and the gradients of
  ``L = sum_k sum(P_k * returned_k)`` (``P_k`` standard normals from ``seed + 1``) with
  respect to each trainable weight and to the inputs, through :mod:`pytest_rnn.backends`;
* for a stateful case: the outputs of two consecutive calls on the two halves of the
  sequence and the states the layer holds after each (no gradients: the carried state is
  the behaviour under test).

:class:`Case` is in :mod:`pytest_rnn.checks.cross_backend_case`, the tolerance and the
comparison in :mod:`pytest_rnn.checks.cross_backend_compare` (their names are importable
from here too); this module holds the subprocesses: each backend's side
(:func:`worker`, which computes the cases) and the parent's (:func:`start_backend`).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.cross_backend_case import Case, case_from_dict
from pytest_rnn.checks.cross_backend_compare import ACTIVATION_ULPS as ACTIVATION_ULPS
from pytest_rnn.checks.cross_backend_compare import (
    BACKENDS,
    KNOWN_DIFFERENCES,
    KnownDifference,
    compare_results,
    max_differences,
    tolerance,
)
from pytest_rnn.checks.cross_backend_compare import EPS32 as EPS32
from pytest_rnn.checks.cross_backend_compare import SAFETY as SAFETY

#: The package each backend needs installed.
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
#: Weights are uniform in [-WEIGHT_SCALE, WEIGHT_SCALE]: pre-activations stay O(1).
WEIGHT_SCALE = 0.5

__all__ = [
    "BACKENDS",
    "Case",
    "KnownDifference",
    "KNOWN_DIFFERENCES",
    "BackendRun",
    "backend_command",
    "compare_results",
    "keras_layer",
    "max_differences",
    "installed_backends",
    "start_backend",
    "tolerance",
]


def installed_backends() -> list[str]:
    """The Keras backends whose package is importable here (found, not imported)."""
    return [b for b in BACKENDS if importlib.util.find_spec(BACKEND_PACKAGES[b]) is not None]


# -- the subprocess side ---------------------------------------------------------------------


def keras_layer(kind: str, units: int, *, bidirectional: bool = False,
                stacked: Sequence[str] = (), **kwargs: Any):
    """The factory of the built-in cases: a Keras ``kind`` layer (``simple_rnn``, ``lstm``,
    ``gru``) of ``units`` units, wrapped in ``Bidirectional`` (concat), or ``keras.layers.RNN``
    over stacked cells of the kinds in ``stacked`` (``kind`` then names the first)."""
    import keras

    from pytest_rnn.checks.models import CELL_CLASSES, LAYER_CLASSES

    if stacked:
        cells = [CELL_CLASSES[k](units) for k in (kind, *stacked)]
        return keras.layers.RNN(cells, **kwargs)
    layer = LAYER_CLASSES[kind](units, **kwargs)
    return keras.layers.Bidirectional(layer) if bidirectional else layer


def _resolve(factory: str):
    target, _, attr = factory.rpartition(":")
    if not target or not attr:
        raise ValueError(f"factory must be 'module:attribute' or 'file.py:attribute'; got "
                         f"{factory!r}")
    if target.endswith(".py"):
        path = Path(target)
        spec = importlib.util.spec_from_file_location(f"_cross_backend_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    owner, *rest = attr.split(".")
    obj = getattr(module, owner)
    if rest:  # Class.method: called on a new instance
        obj = getattr(obj(), rest[0])
    return obj


def _case_arrays(case: Case) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(case.seed)
    x = rng.normal(size=case.input_shape).astype("float32")
    arrays = {"x": x if case.inputs is None else np.asarray(case.inputs, dtype="float32")}
    if case.initial_state:
        batch = case.input_shape[0]
        arrays["initial_state"] = [rng.normal(size=(batch, *s)).astype("float32") * 0.5
                                   for s in case.state_shapes]
    return arrays


def _compute(case: Case) -> dict[str, Any]:
    import keras

    from pytest_rnn import backends

    layer = _resolve(case.factory)(**dict(case.kwargs))
    arrays = _case_arrays(case)
    x = arrays["x"]
    if case.stateful:
        half = case.steps // 2
        batch_shape = (case.input_shape[0], half, *case.input_shape[2:])
        layer.build(batch_shape)
    else:
        layer.build(tuple(case.input_shape))
    rng = np.random.default_rng(case.seed + 2)
    for w in layer.trainable_weights:
        w.assign(rng.uniform(-WEIGHT_SCALE, WEIGHT_SCALE, size=tuple(w.shape)).astype("float32"))
    tensors: dict[str, np.ndarray] = {}
    mask = None if case.mask is None else np.asarray(case.mask, dtype=bool)

    if case.stateful:
        half = case.steps // 2
        for k, part in enumerate((x[:, :half], x[:, half:])):
            out = compare.leaves(layer(part, training=False))
            tensors[f"call {k + 1} output"] = out[0]
            states = [s for s in layer.states] if hasattr(layer, "states") else []
            for i, s in enumerate(compare.leaves(states)):
                tensors[f"call {k + 1} state {i}"] = s
        return {"tensors": tensors, "weights": [w.path for w in layer.trainable_weights]}

    def call(inputs):
        kwargs = {"training": False}
        if mask is not None:
            kwargs["mask"] = keras.ops.convert_to_tensor(mask)
        if case.initial_state:
            kwargs["initial_state"] = [keras.ops.convert_to_tensor(s)
                                       for s in arrays["initial_state"]]
        return keras.tree.flatten(layer(inputs, **kwargs))

    proj_rng = np.random.default_rng(case.seed + 1)
    projections: list[np.ndarray] = []

    def loss_and_outputs(inputs):
        outs = call(inputs)
        while len(projections) < len(outs):  # drawn in output order, once
            shape = tuple(outs[len(projections)].shape)
            projections.append(proj_rng.normal(size=shape).astype("float32"))
        # projections as tensors: ndarray * tensor would convert the tensor to NumPy on torch
        loss = sum(keras.ops.sum(keras.ops.cast(o, "float32") * keras.ops.convert_to_tensor(p))
                   for o, p in zip(outs, projections, strict=True))
        return loss, outs

    variables = list(layer.trainable_weights)
    _, outs, g_vars, g_inputs = backends.value_and_grad(loss_and_outputs, variables, [x],
                                                        has_aux=True)
    outs = compare.leaves(outs)
    names = ["output"] + [f"state {i}" for i in range(len(outs) - 1)]
    for name, value in zip(names, outs, strict=True):
        tensors[name] = value
    tensors["dL/d inputs"] = g_inputs[0]
    # named by position and the variable's own name: layer paths carry a per-process
    # counter (gru_1/...) that depends on what the process built before
    for i, (v, g) in enumerate(zip(variables, g_vars, strict=True)):
        tensors[f"dL/d w{i} {v.name}"] = np.zeros(tuple(v.shape)) if g is None else g
    return {"tensors": tensors, "weights": [v.path for v in variables]}


def _apply_patch(spec: str | None):
    if not spec:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)()


def worker(in_path: str, out_path: str) -> int:
    """Compute every case of ``in_path`` on this process's backend; write ``out_path``."""
    spec = json.loads(Path(in_path).read_text())
    for entry in spec.get("sys_path", []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    import keras

    from pytest_rnn.runtime import versions

    backend = keras.backend.backend()
    patch = spec.get("patch")
    undo = _apply_patch(patch)
    results: dict[str, Any] = {}
    for raw in spec["cases"]:
        case = case_from_dict(raw)
        started = time.perf_counter()
        try:
            computed = _compute(case)
            results[case.name] = {"seconds": round(time.perf_counter() - started, 3),
                "tensors": {k: np.asarray(v, dtype=np.float64).tolist()
                            for k, v in computed["tensors"].items()},
                "weights": computed["weights"], "error": None}
        except Exception as exc:  # noqa: BLE001 - reported per case, compared in the parent
            results[case.name] = {"tensors": {}, "weights": [],
                                  "error": f"{type(exc).__name__}: {exc}"}
    if callable(undo):
        undo()
    Path(out_path).write_text(json.dumps({
        "backend": backend, "keras": keras.__version__,
        "backend_version": versions.package_version(BACKEND_PACKAGES.get(backend, backend)),
        "patch": patch, "cases": results}))
    return 0


# -- the parent side -------------------------------------------------------------------------


@dataclass
class BackendRun:
    """A backend's subprocess, started by :func:`start_backend`; :meth:`result` waits."""

    backend: str
    proc: subprocess.Popen
    out_path: Path
    timeout: float = 600.0
    _result: dict[str, Any] | None = None

    def result(self) -> dict[str, Any]:
        """The backend's results (``{"backend", "cases": {name: {...}}}``); raises
        RuntimeError naming the backend when its subprocess failed."""
        if self._result is not None:
            return self._result
        try:
            _, stderr = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate()
            raise RuntimeError(
                f"the {self.backend} subprocess ran past {self.timeout:g} s") from None
        if self.proc.returncode != 0 or not self.out_path.exists():
            tail = "\n".join((stderr or "").strip().splitlines()[-15:])
            raise RuntimeError(f"the {self.backend} subprocess failed (exit "
                               f"{self.proc.returncode}):\n{tail}")
        self._result = json.loads(self.out_path.read_text())
        return self._result


def backend_command(backend: str, cases: Sequence[Case], workdir: Path, *,
                    patch: str | None = None, sys_path: Sequence[str] = (),
                    env: Mapping[str, str] | None = None
                    ) -> tuple[list[str], dict[str, str], Path]:
    """``(argv, env, out_path)`` of ``backend``'s subprocess on ``cases``; writes its input
    file under ``workdir``. ``patch``: ``"module:function"`` called in the subprocess before
    the cases (an injected regression; ``sys_path`` makes its module importable); it may
    return a function that undoes it."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    in_path, out_path = workdir / f"{backend}-in.json", workdir / f"{backend}-out.json"
    in_path.write_text(json.dumps({
        "cases": [asdict(c) for c in cases], "patch": patch, "sys_path": list(sys_path)}))
    child_env = dict(os.environ if env is None else env)
    child_env["KERAS_BACKEND"] = backend
    # Each subprocess runs beside the parent's tests: one thread each keeps the cores shared.
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        child_env.setdefault(var, "1")
    child_env.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                         "intra_op_parallelism_threads=1")
    child_env.setdefault("CUDA_VISIBLE_DEVICES", "")  # equivalence on the CPU kernels
    child_env.setdefault("JAX_PLATFORMS", "cpu")
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(
        [root, *([child_env["PYTHONPATH"]] if child_env.get("PYTHONPATH") else [])])
    argv = [sys.executable, "-m", "pytest_rnn.checks.cross_backend", str(in_path),
            str(out_path)]
    return argv, child_env, out_path


def start_backend(backend: str, cases: Sequence[Case], workdir: Path, *,
                  patch: str | None = None, sys_path: Sequence[str] = (),
                  timeout: float = 600.0, env: Mapping[str, str] | None = None) -> BackendRun:
    """Start ``backend``'s subprocess on ``cases`` (it runs while the caller goes on)."""
    argv, child_env, out_path = backend_command(backend, cases, workdir, patch=patch,
                                                sys_path=sys_path, env=env)
    proc = subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return BackendRun(backend, proc, out_path, timeout)


if __name__ == "__main__":
    sys.exit(worker(*sys.argv[1:3]))
