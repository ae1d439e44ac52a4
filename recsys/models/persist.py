"""Saving and loading fitted models without pickle.

A fitted model is its registry key, its Params (JSON) and its fitted attributes. Each
attribute is written by type: numpy arrays and scipy.sparse matrices go into one ``.npz``
(loaded with ``allow_pickle=False``), scalars, strings and small containers into JSON,
torch tensors as arrays, torch modules as ``state_dict`` into one ``torch.save`` file
(loaded with ``weights_only=True``), and Recommender-valued attributes (the components of
a hybrid, NeuMF's pre-trained halves) recursively. Nothing is ever unpickled, so a
foreign artifact can fail to load but cannot run code.

Loading rebuilds the model from the same pieces and the *training Dataset*, which is not
stored (the caller re-makes the split deterministically): a torch model first re-derives
its training-data state with ``_prepare(train)`` (row stores, samplers, windows), then the
stored attributes are put back, ``_build(train)`` makes the network and the stored weights
are loaded into it. Training-only objects (optimizers) are not kept.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.models.base import Recommender
from recsys.models.registry import registry

FORMAT = "recsys-model"
VERSION = 1
STATE_FILE, ARRAYS_FILE, MODULES_FILE = "model.json", "arrays.npz", "modules.pt"
# attributes every Recommender has that are rebuilt rather than stored
_REBUILT = {"params", "train_"}
_SPARSE_PARTS = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
                 "coo": ("data", "row", "col")}


class ArtifactError(ValueError):
    """A model artifact cannot be written or read; the message says what and how to fix it."""


def _if_imported(name: str):
    """The module ``name`` if something has imported it already, else None.

    A value can be a torch tensor, and a model a TorchModel, only once torch has been imported,
    so saving and loading numpy models never pays torch's multi-second import. (Importing it
    again waits for a thread that is still initialising it, rather than reading it half-made.)
    """
    return importlib.import_module(name) if name in sys.modules else None


# ---------------------------------------------------------------------- encoding
class _Writer:
    """Collects arrays and module weights under unique names while a state tree is encoded."""

    def __init__(self, train: Dataset):
        self.train = train
        self.arrays: dict[str, np.ndarray] = {}
        self.modules: dict[str, dict] = {}

    def array(self, value: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(value)
        return name


def _encode(value, writer: _Writer, where: str):
    """A JSON tree for ``value``; big data is handed to ``writer`` and referenced by name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return {"$": "npscalar", "dtype": value.dtype.str, "value": value.item()}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if all(isinstance(v, str) for v in value.ravel()):
                return {"$": "strarray", "shape": list(value.shape), "items": value.ravel().tolist()}
            raise ArtifactError(f"{where} is a numpy array of Python objects, which cannot be stored without pickle.")
        return {"$": "array", "ref": writer.array(value)}
    if sp.issparse(value):
        return _encode_sparse(value, writer)
    torch = _if_imported("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise _Unstorable(where, value)
        return {"$": "tensor", "ref": writer.array(value.detach().cpu().numpy()), "device": str(value.device)}
    if torch is not None and isinstance(value, torch.device):
        return {"$": "device", "name": str(value)}
    if torch is not None and isinstance(value, torch.nn.Module):
        writer.modules[where] = {k: v.detach().cpu() for k, v in value.state_dict().items()}
        return {"$": "module", "ref": where, "training": value.training}
    if isinstance(value, Recommender):
        return _encode_model(value, writer, where)
    if isinstance(value, Dataset):
        if value is writer.train or value.fingerprint == writer.train.fingerprint:
            return {"$": "dataset", "ref": "train"}
        raise ArtifactError(f"{where} holds a dataset other than the training set; only the training set can be "
                            "re-attached when the model is loaded.")
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {"$": kind, "items": [_encode(v, writer, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"$": "dict", "items": [[_encode(k, writer, f"{where} key"), _encode(v, writer, f"{where}[{k!r}]")]
                                       for k, v in value.items()]}
    raise _Unstorable(where, value)


class _Unstorable(ArtifactError):
    """A value of a type with no safe encoding (e.g. a sampler object)."""

    def __init__(self, where: str, value):
        super().__init__(f"{where} is a {type(value).__name__}, which has no safe (non-pickle) encoding.")


def _encode_sparse(value, writer: _Writer) -> dict:
    fmt = value.format if value.format in _SPARSE_PARTS else "csr"
    stored = value.asformat(fmt)
    parts = {part: writer.array(getattr(stored, part)) for part in _SPARSE_PARTS[fmt]}
    return {"$": "sparse", "format": fmt, "original": value.format, "shape": list(value.shape),
            "array_api": isinstance(value, sp.sparray), "parts": parts}


def _encode_model(model: Recommender, writer: _Writer, where: str) -> dict:
    """Key, params and every fitted attribute of ``model``.

    Training-only objects (optimizers) are dropped. Other values without a safe encoding
    are allowed only on torch models, whose ``_prepare(train)`` re-creates them at load
    time; their names are recorded and loading checks that they came back.
    """
    if not model.is_fitted:
        raise ArtifactError(f"{where}: {model.label} is not fitted; only fitted models are saved.")
    if model.train_ is not writer.train and model.train_.fingerprint != writer.train.fingerprint:
        raise ArtifactError(f"{where}: {model.label} was trained on other data than the model that holds it; "
                            "components must share the training set.")
    state, rebuilt = {}, []
    torch = _if_imported("torch")
    for name, value in vars(model).items():
        if name in _REBUILT or (torch is not None and isinstance(value, torch.optim.Optimizer)):
            continue
        try:
            state[name] = _encode(value, writer, f"{where}.{name}")
        except _Unstorable:
            if not _is_torch_model(model):
                raise
            rebuilt.append(name)
    return {"$": "model", "key": model.key, "params": _params_json(model), "state": state, "rebuilt": rebuilt}


def _params_json(model: Recommender) -> dict:
    params = model.get_params()
    try:
        json.dumps(params)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{model.key}'s parameters are not JSON values ({exc}).") from None
    return params


def _is_torch_model(model) -> bool:
    training = _if_imported("recsys.models.training")
    return training is not None and isinstance(model, training.TorchModel)


# ---------------------------------------------------------------------- decoding
class _Reader:
    def __init__(self, arrays, modules: dict, train: Dataset):
        self.arrays, self.modules, self.train = arrays, modules, train

    def array(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise ArtifactError(f"the array {name!r} named in {STATE_FILE} is missing from {ARRAYS_FILE}.")
        return self.arrays[name]


def _decode(tree, reader: _Reader, device=None):
    if not isinstance(tree, dict):
        return tree
    kind = tree.get("$")
    if kind == "npscalar":
        return np.dtype(tree["dtype"]).type(tree["value"])
    if kind == "array":
        return reader.array(tree["ref"])
    if kind == "strarray":
        return np.array(tree["items"], dtype=object).reshape(tree["shape"])
    if kind == "sparse":
        return _decode_sparse(tree, reader)
    if kind == "tensor":
        import torch

        return torch.from_numpy(reader.array(tree["ref"]).copy()).to(device or "cpu")
    if kind == "device":
        import torch

        return device if device is not None else torch.device(tree["name"])
    if kind == "dataset":
        return reader.train
    if kind == "model":
        return _decode_model(tree, reader)
    if kind in ("list", "tuple"):
        items = [_decode(v, reader, device) for v in tree["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_decode(k, reader, device): _decode(v, reader, device) for k, v in tree["items"]}
    if kind == "module":
        return tree  # placed into the rebuilt network by _decode_model
    raise ArtifactError(f"{STATE_FILE} holds an entry of unknown kind {kind!r}; it was not written by this program.")


def _decode_sparse(tree: dict, reader: _Reader):
    fmt = tree["format"]
    if fmt not in _SPARSE_PARTS:
        raise ArtifactError(f"unknown sparse format {fmt!r} in {STATE_FILE}.")
    parts = [reader.array(tree["parts"][p]) for p in _SPARSE_PARTS[fmt]]
    shape = tuple(tree["shape"])
    if fmt == "coo":
        data, row, col = parts
        matrix = sp.coo_matrix((data, (row, col)), shape=shape)
    else:
        matrix = (sp.csr_matrix if fmt == "csr" else sp.csc_matrix)(tuple(parts), shape=shape)
    matrix = matrix.asformat(tree["original"])
    return sp.csr_array(matrix).asformat(tree["original"]) if tree["array_api"] else matrix


def _decode_model(tree: dict, reader: _Reader) -> Recommender:
    key = tree.get("key")
    if key not in registry:
        raise ArtifactError(f"the artifact is a {key!r} model, which this version does not have; "
                            "update the program or retrain the run.")
    cls = registry[key]
    model = cls(_params_from_json(cls, tree.get("params", {})))
    model.train_ = reader.train
    device = None
    if _is_torch_model(model):
        from recsys.models.training import resolve_device

        device = model.device_ = resolve_device(model.params.device)
        model._prepare(reader.train)  # re-derives what was not stored (row stores, samplers)
    modules = {}
    for name, value in tree["state"].items():
        if isinstance(value, dict) and value.get("$") == "module":
            modules[name] = value
        else:
            setattr(model, name, _decode(value, reader, device))
    for name, entry in modules.items():
        _restore_module(model, name, entry, reader)
    missing = [name for name in tree.get("rebuilt", []) if not hasattr(model, name)]
    if missing:
        raise ArtifactError(f"{cls.label} could not rebuild {missing} from the training data; "
                            "retrain the run to store it again.")
    return model


def _restore_module(model, name: str, entry: dict, reader: _Reader) -> None:
    import torch

    if name == "module_":
        model.module_ = model._build(reader.train)
    target = getattr(model, name, None)
    if not isinstance(target, torch.nn.Module):
        raise ArtifactError(f"{model.label} has no network {name!r} to load stored weights into.")
    weights = reader.modules.get(entry["ref"])
    if weights is None:
        raise ArtifactError(f"the weights of {entry['ref']} are missing from {MODULES_FILE}.")
    target.to(getattr(model, "device_", "cpu"))
    try:
        target.load_state_dict(weights)
    except RuntimeError as exc:
        raise ArtifactError(f"the stored weights of {model.label} do not fit its network ({exc}). "
                            "The artifact comes from another version of the model; retrain the run.") from None
    target.train(bool(entry.get("training", False)))


def _params_from_json(cls, values: dict):
    """Params from JSON, turning lists back into tuples where the default is a tuple."""
    from recsys.models.base import coerce_params

    if not isinstance(values, dict):
        raise ArtifactError(f"the stored parameters of {cls.label} are not a JSON object.")
    tuple_fields = {f.name for f in dataclasses.fields(cls.Params) if isinstance(f.default, tuple)}
    fixed = {k: tuple(v) if k in tuple_fields and isinstance(v, list) else v for k, v in values.items()}
    try:
        return coerce_params(cls.Params, fixed)
    except ValueError as exc:  # DataError: a stored parameter this version no longer accepts
        raise ArtifactError(f"the stored parameters of {cls.label} do not fit this version ({exc}); "
                            "retrain the run.") from None


# ---------------------------------------------------------------------- files
def save_model(model: Recommender, folder: str | Path) -> None:
    """Write ``model`` into ``folder`` (created; existing files of the same names are replaced)."""
    folder = Path(folder)
    if not model.is_fitted:
        raise ArtifactError(f"{model.label} is not fitted; fit it before saving.")
    writer = _Writer(model.train_)
    tree = _encode_model(model, writer, "model")
    folder.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "version": VERSION, "train_fingerprint": model.train_.fingerprint,
              "train_shape": [model.train_.n_users, model.train_.n_items], "model": tree}
    atomic_write(folder / STATE_FILE, lambda f: f.write(json.dumps(header).encode()))
    atomic_write(folder / ARRAYS_FILE, lambda f: np.savez(f, **writer.arrays))
    if writer.modules:
        import torch

        atomic_write(folder / MODULES_FILE, lambda f: torch.save(writer.modules, f))


def load_model(folder: str | Path, train: Dataset) -> Recommender:
    """The model saved in ``folder``, re-attached to its training Dataset ``train``."""
    folder = Path(folder)
    header = read_header(folder)
    if header["train_fingerprint"] != train.fingerprint:
        raise ArtifactError(
            f"the model in {folder.name} was trained on data with fingerprint {header['train_fingerprint']}, "
            f"but the training set given has {train.fingerprint}. Load it with the same dataset and split.")
    try:
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise ArtifactError(f"{ARRAYS_FILE} is missing from {folder.name}; the artifact is incomplete.") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{ARRAYS_FILE} in {folder.name} is not a readable numpy archive ({exc}).") from None
    modules = {}
    if (folder / MODULES_FILE).exists():
        import torch

        try:
            modules = torch.load(folder / MODULES_FILE, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged or foreign file
            raise ArtifactError(f"{MODULES_FILE} in {folder.name} is not a readable weights file "
                                f"({type(exc).__name__}).") from None
        if not isinstance(modules, dict):
            raise ArtifactError(f"{MODULES_FILE} in {folder.name} does not hold network weights.")
    try:
        return _decode_model(header["model"], _Reader(arrays, modules, train))
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{STATE_FILE} in {folder.name} is malformed (missing or wrong entry {exc}).") from None


def read_header(folder: str | Path) -> dict:
    """The checked JSON header of a saved model (format, version, training fingerprint)."""
    path = Path(folder) / STATE_FILE
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{STATE_FILE} is missing from {Path(folder).name}; the artifact is incomplete.") from None
    except (ValueError, UnicodeDecodeError):
        raise ArtifactError(f"{STATE_FILE} in {Path(folder).name} is not valid JSON; the file is damaged.") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"{Path(folder).name} does not hold a Recommender Explorer model artifact.")
    if header.get("version") != VERSION:
        raise ArtifactError(f"the model artifact has format version {header.get('version')}; this program reads "
                            f"version {VERSION}. Retrain the run.")
    for key in ("train_fingerprint", "model"):
        if key not in header:
            raise ArtifactError(f"{STATE_FILE} in {Path(folder).name} lacks {key!r}; the file is damaged.")
    return header


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file and rename it, so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
