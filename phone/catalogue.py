"""The phone-model catalogue on disk: which model files are read, and in which order.

``phone.firmware.models`` turns a family file's text into ``PhoneModel`` records
and knows nothing of files; this module finds and reads them. The bundled
files are the repository's top-level ``models/`` folder (shipped inside the
wheel, found through ``phone.resources.bundled_dir``).

Users add folders of their own files with ``load_catalogue(extra_dirs=...)``
or the ``PHONETRUST_MODELS`` environment variable (folders separated by
``os.pathsep``). Layers load in the order bundled, PHONETRUST_MODELS, extra
folders; a model defined in a later layer replaces the earlier model of the
same name as a whole (nothing is merged across files).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from phone.errors import UsageError
from phone.firmware.models import Catalogue, ModelFileError, PhoneModel, models_from_text
from phone.resources import bundled_dir

__all__ = ["ENV_VAR", "default_catalogue", "get_model", "load_catalogue", "model_on_load", "read_model_file"]

#: Environment variable naming extra model folders (os.pathsep-separated).
ENV_VAR = "PHONETRUST_MODELS"


def read_model_file(path: Path) -> list[PhoneModel]:
    """Every model of one family file, in file order.

    Raises ModelFileError naming the file (and table and field) for invalid
    TOML, unknown or missing fields and values of the wrong kind.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ModelFileError(path, None, f"not valid TOML: {error}") from None
    return models_from_text(text, str(path), family=Path(path).stem)


def _layer(folder: Path, origin: str) -> dict[str, PhoneModel]:
    if not folder.is_dir():
        raise UsageError(f"{origin} {str(folder)!r} does not exist")
    models: dict[str, PhoneModel] = {}
    for path in sorted(folder.glob("*.toml")):
        for model in read_model_file(path):
            earlier = models.get(model.name)
            if earlier is not None:
                raise ModelFileError(path, f"[models.{model.name}]",
                                     f"is also defined in {earlier.origin} (same folder)")
            models[model.name] = model
    return models


def _env_dirs(value: str) -> list[Path]:
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def load_catalogue(extra_dirs: Iterable[str | os.PathLike[str]] = (), *,
                   environ: Mapping[str, str] | None = None,
                   include_bundled: bool = True) -> Catalogue:
    """Load every model: the bundled files, then PHONETRUST_MODELS, then ``extra_dirs``.

    A model in a later folder replaces a same-named model of an earlier one.
    ``environ`` defaults to ``os.environ`` (tests pass their own).
    """
    environ = os.environ if environ is None else environ
    layers: list[tuple[Path, str]] = []
    if include_bundled:
        layers.append((bundled_dir("models"), "bundled models folder"))
    layers += [(folder, f"{ENV_VAR} folder") for folder in _env_dirs(environ.get(ENV_VAR, ""))]
    layers += [(Path(folder), "models folder") for folder in extra_dirs]
    models: dict[str, PhoneModel] = {}
    for folder, origin in layers:
        models.update(_layer(folder, origin))
    return Catalogue.from_models(models.values())


@functools.lru_cache(maxsize=4)
def _default_catalogue(env_value: str) -> Catalogue:
    return load_catalogue(environ={ENV_VAR: env_value})


def default_catalogue() -> Catalogue:
    """The bundled models plus PHONETRUST_MODELS, loaded once per value of that variable."""
    return _default_catalogue(os.environ.get(ENV_VAR, ""))


def get_model(name: str, catalogue: Catalogue | None = None) -> PhoneModel:
    """The model called ``name`` (or an alias such as "7965"), from ``catalogue``
    or the default one. Raises UnknownModelError listing the known names."""
    return (catalogue if catalogue is not None else default_catalogue()).get(name)


def model_on_load(text: str, catalogue: Catalogue | None = None) -> PhoneModel:
    """``MODEL`` or ``MODEL@LOAD`` (``CP-8861@sip88xx.10-3-1-20``) as the model behaving as that load
    does (``PhoneModel.on_load``). An unknown model is UnknownModelError; a load that does not
    read, or of a load family the model does not run, is LoadFormatError (both one line)."""
    name, _, load = text.partition("@")
    return get_model(name.strip(), catalogue).on_load(load.strip() or None)
