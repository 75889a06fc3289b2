"""The models a server holds: named, loaded in the background, described for clients.

A model is named on the command line as ``NAME=SOURCE`` or by its source alone (a
published model's name, a run folder's name, an exported file's stem). Requests name
models only by these names: nothing a request says is ever read as a path.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from kstyle.errors import KstyleError
from kstyle.models.signature import IMAGE, SCALAR, encoded_ports

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_sources(sources: list[str]) -> dict[str, str]:
    """``{name: source}`` from ``NAME=SOURCE`` or ``SOURCE`` arguments.

    Raises:
        KstyleError: a name that is not ``[A-Za-z0-9._-]`` (64 at most), or two models of
            one name.
    """
    named: dict[str, str] = {}
    for item in sources:
        name, sep, source = item.partition("=")
        if not sep:
            source = item
            path = Path(item.rstrip("/"))
            name = path.stem if path.suffix in (".tflite", ".onnx", ".keras") else path.name
            if name == "1" and path.parent.name:  # a SavedModel in NAME/1/
                name = path.parent.name
        if not NAME.match(name):
            raise KstyleError(f"{item}: {name!r} is not a model name a URL can hold "
                              "(letters, digits, '.', '_', '-'); name it: NAME=SOURCE")
        if name in named:
            raise KstyleError(f"two models named {name!r} ({named[name]} and {source}); "
                              "name one: NAME=SOURCE")
        named[name] = source
    return named


def form_fields(signature) -> list[dict]:
    """The fields of a ``:stylize`` upload: ``image`` (the main endpoint's first input),
    then its other inputs by name (a file for an image, a number for a scalar)."""
    fields = []
    for i, port in enumerate(signature.main.inputs):
        if port.type not in (IMAGE, SCALAR):
            continue
        field = {"name": "image" if i == 0 else port.name, "type": port.type,
                 "doc": port.doc, "required": port.type == IMAGE or port.default is None}
        if port.type == SCALAR:
            field.update(default=port.default, low=port.low, high=port.high)
        fields.append(field)
    return fields


class ServedModel:
    """One model of a server: its name, where it came from, and (once loaded) its
    :class:`kstyle.Stylizer`."""

    def __init__(self, name: str, source: str):
        self.name, self.source = name, source
        self.stylizer = None
        self.origin = source

    def load(self, log=print) -> None:
        from kstyle.inference import zoo
        from kstyle.inference.stylizer import load

        if zoo.is_name(self.source):
            zoo.resolve(self.source, log=log)  # downloaded once, with a progress bar
            self.origin = f"published model {self.source!r}"
        # No warm-up call: a model traced at one image size runs every later size on a
        # graph of unknown size (TensorFlow's reduce_retracing), which takes the slower,
        # shape-generic kernels; the first request traces at its own size instead.
        self.stylizer = load(self.source)

    def describe(self) -> dict:
        """What ``GET /v1/models`` says of it."""
        stylizer = self.stylizer
        signature = stylizer.signature
        main = signature.main
        encoded = encoded_ports(main)
        return {
            "name": self.name,
            "kind": stylizer.info.get("kind"),
            "source": self.origin,
            "fields": form_fields(signature),
            "takes_style": any(p.type == IMAGE for p in main.inputs[1:]),
            "size_multiple": stylizer.size_multiple,
            "batches": stylizer.inference.batches,
            "predict_inputs": None if encoded is None else [n for n, _ in encoded],
            "signature": signature.to_dict(),
        }


class ModelSet:
    """The server's models, loaded one by one on a background thread (the server
    answers ``/healthz`` meanwhile; ``/readyz`` once all are loaded)."""

    def __init__(self, sources: dict[str, str], log=print):
        self.models = {name: ServedModel(name, source) for name, source in sources.items()}
        self.ready = threading.Event()
        #: What clients are told when a model failed to load (no paths), and the
        #: operator's full reason.
        self.error: str | None = None
        self.failure: str | None = None
        #: Called (on the loading thread) when a model fails to load.
        self.on_error = None
        self._log = log
        self._thread = None

    @classmethod
    def of_stylizers(cls, stylizers: dict) -> ModelSet:
        """Models already loaded (``{name: Stylizer}``), for the Python API and tests."""
        models = cls({})
        for name, stylizer in stylizers.items():
            model = ServedModel(name, "(given in Python)")
            model.stylizer = stylizer
            models.models[name] = model
        models.ready.set()
        return models

    def start(self) -> None:
        if self.ready.is_set() or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, name="kstyle-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        for model in self.models.values():
            try:
                self._log(f"loading {model.name} from {model.source}")
                model.load(log=self._log)
            except Exception as e:  # KstyleError, or anything a broken file raises
                # Clients are told which model; the reason, with its paths, goes to the
                # log only.
                self.error = (f"model {model.name!r} could not be loaded; the server's "
                              "log says why")
                self.failure = f"{model.name}: {e}"
                self._log(f"error: {self.failure}")
                if self.on_error is not None:
                    self.on_error()
                return
        self._log(f"ready: {', '.join(self.models)}")
        self.ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until every model is loaded; False on a timeout or a failure."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready.is_set()
