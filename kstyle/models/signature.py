"""The inference contract: what a kind's trained network takes and gives, and how it runs.

Each model kind declares, in its own model file, an :class:`Inference` subclass (the
class attribute ``inference`` of its :class:`kstyle.models.base.TranslationModel`); kinds
that translate one image to one image use :class:`Inference` itself. The declaration is:

- a :class:`Signature`: named endpoints, each with named, typed inputs and outputs
  (:class:`Port`). The first endpoint is the one a plain call runs; an export writes
  every endpoint (a SavedModel signature, a LiteRT signature, an ONNX file each);
- :meth:`Inference.graphs`: each endpoint as a TensorFlow function of uint8 images
  (and whatever else its ports say), built from the trained network;
- :meth:`Inference.run`: how one user call (an image and keyword inputs, such as
  ``style=`` and ``strength=``) maps onto endpoint calls, on any backend;
- optionally :meth:`Inference.tiled`, the same call for an image too large for one pass.

``kstyle.load`` and ``kstyle.stylize``, ``kstyle stylize``, ``kstyle export`` and the
runners of exported files use a model through this declaration only: none of them knows
a kind by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from kstyle.errors import StyleOptionError

#: Port types: uint8 ``[N, H, W, 3]`` images of any size, a float32 scalar, or a float32
#: tensor of the port's ``shape``.
IMAGE, SCALAR, TENSOR = "image", "scalar", "tensor"


@dataclasses.dataclass(frozen=True)
class Port:
    """One named input or output of an endpoint.

    Args:
        name: its name in every backend (a SavedModel or LiteRT signature's argument,
            an ONNX graph's input) and the keyword a user passes it by.
        type: :data:`IMAGE`, :data:`SCALAR` or :data:`TENSOR`.
        doc: what it is, for ``--help``, ``kstyle models`` and the metadata of exports.
        default: a scalar's value when the user gives none (None: required).
        low, high: a scalar's allowed range.
        shape: a tensor's shape (None for any size along an axis).
        aligned: an image the size of the endpoint's first image (a mask, say): padded
            and tiled with it.
    """

    name: str
    type: str = IMAGE
    doc: str = ""
    default: float | None = None
    low: float | None = None
    high: float | None = None
    shape: tuple = ()
    aligned: bool = False

    def spec(self):
        """The ``tf.TensorSpec`` of this port, as the exported graphs take it."""
        import tensorflow as tf

        if self.type == IMAGE:
            return tf.TensorSpec([None, None, None, 3], tf.uint8, name=self.name)
        return tf.TensorSpec(list(self.shape), tf.float32, name=self.name)

    def as_feed(self, value) -> np.ndarray:
        """``value`` as this port is fed: uint8 images, float32 otherwise."""
        return np.asarray(value, np.uint8 if self.type == IMAGE else np.float32)

    def problem(self, value) -> str | None:
        """What is wrong with a user's scalar ``value`` for this port, if anything."""
        if self.type != SCALAR:
            return None
        try:
            x = float(value)
        except (TypeError, ValueError):
            return f"{self.name} = {value!r}: expected a number"
        if not np.isfinite(x) or (self.low is not None and x < self.low) or (
                self.high is not None and x > self.high):
            return f"{self.name} = {value}: expected a number in [{self.low}, {self.high}]"
        return None


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A named graph of a model: inputs in, outputs out (ports in order)."""

    name: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    doc: str = ""

    def specs(self) -> list:
        return [port.spec() for port in self.inputs]

    def describe(self) -> str:
        """``"stylize(content, style, strength) -> image"``."""
        return (f"{self.name}({', '.join(p.name for p in self.inputs)}) -> "
                f"{', '.join(p.name for p in self.outputs)}")


@dataclasses.dataclass(frozen=True)
class Signature:
    """A model's endpoints; the first is the one a plain call runs."""

    endpoints: tuple[Endpoint, ...]

    @property
    def main(self) -> Endpoint:
        return self.endpoints[0]

    def __getitem__(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [endpoint.name for endpoint in self.endpoints]

    def to_dict(self) -> dict:
        """The signature as JSON (written into every export's metadata)."""
        return {"endpoints": [dataclasses.asdict(e) for e in self.endpoints]}

    @classmethod
    def from_dict(cls, data: dict) -> Signature:
        def port(p):
            return Port(**{**p, "shape": tuple(p.get("shape", ()))})

        return cls(tuple(Endpoint(e["name"], tuple(port(p) for p in e["inputs"]),
                                  tuple(port(p) for p in e["outputs"]), e.get("doc", ""))
                         for e in data["endpoints"]))


def image_to_image(doc: str = "the image to translate") -> Signature:
    """The signature of a kind that translates one image: ``stylize(images) -> images``."""
    return Signature((Endpoint("stylize", (Port("images", doc=doc),),
                               (Port("images", doc="the result, the input's size"),),
                               "the image translated"),))


#: The encoded-bytes form of a model's main endpoint: what ``kstyle export --saved-model``
#: writes as ``serving_default`` and ``kstyle serve`` answers at ``:predict``, in the
#: request shape of TensorFlow Serving's REST API. Its output is the result as a PNG file.
ENCODED_SIGNATURE, ENCODED_OUTPUT = "serving_default", "image_bytes"


def encoded_ports(endpoint: Endpoint) -> list[tuple[str, Port]] | None:
    """The inputs of ``endpoint``'s encoded-bytes form, ``[(name, port)]``: each image as
    an encoded file (``image_bytes`` for the first, ``<name>_bytes`` for others: TensorFlow
    Serving base64-codes tensors whose name ends in ``_bytes``), each scalar as it is.
    None when the endpoint takes a tensor (it has no encoded form)."""
    ports = []
    for i, port in enumerate(endpoint.inputs):
        if port.type == IMAGE:
            ports.append(("image_bytes" if i == 0 else f"{port.name}_bytes", port))
        elif port.type == SCALAR:
            ports.append((port.name, port))
        else:
            return None
    return ports


class Inference:
    """How a trained network of one kind is run; as given here, for kinds that translate
    one image (pix2pix, CycleGAN, CDAE, the fast stylizer).

    An instance wraps one loaded model: ``network`` (the Keras network of a run, or None
    for an exported file, whose graphs are already written) and ``info`` (the run's
    ``run.json``, or the file's metadata).

    A subclass may set:
        ``signature``: its endpoints (:class:`Signature`).
        ``options``: keyword options of :meth:`run` that are not ports (name -> help).
        ``default_size_multiple``: the side multiple when ``info`` records none.

    and write:
        :meth:`graphs`: each endpoint's function of tensors (inputs in port order).
        :meth:`run`: a user's call as endpoint calls (the default feeds the main endpoint
            the image and each port given by keyword).
        :meth:`tiled`: a call on an image too large for one pass (the default fixes the
            instance norms' statistics at the whole image's, see ``kstyle.nets.tiling``).
        :meth:`accepts`: whether a bare network (a ``.keras`` file with no ``run.json``)
            is one of this kind's.

    Example:
        >>> inference = Inference(generator, {"size_multiple": 256})
        >>> stylize = inference.graphs()["stylize"]
        >>> stylize(np.zeros((1, 300, 200, 3), np.uint8)).shape
        TensorShape([1, 300, 200, 3])
    """

    signature: ClassVar[Signature] = image_to_image()
    options: ClassVar[dict[str, str]] = {}
    #: Values of :attr:`options` under which :meth:`run` computes what the exported
    #: graphs compute (a SavedModel's ``serving_default``): ``kstyle serve``'s
    #: ``:predict`` runs with them, so that it answers as TensorFlow Serving would.
    graph_options: ClassVar[dict] = {}
    default_size_multiple: ClassVar[int] = 1

    def __init__(self, network, info: dict | None = None, call: Callable | None = None):
        self.network = network
        self.info = dict(info or {})
        self.size_multiple = int(self.info.get("size_multiple")
                                 or self.measured_size_multiple(network)
                                 or self.default_size_multiple)
        self.input_transform = self.info.get("input_transform", "none")
        self._tiler = None
        #: ``call(endpoint, **feeds)``: runs one endpoint on the backend at hand, its
        #: feeds batched and by port name; returns its (first) output as numpy.
        self.call = call or self.keras_call()

    @classmethod
    def accepts(cls, network) -> bool:
        """Whether ``network`` (loaded from a bare ``.keras`` file) is of this kind."""
        return len(network.inputs) == len(cls.signature.main.inputs)

    @staticmethod
    def measured_size_multiple(network) -> int | None:
        """The product of a network's strided convolutions' strides (None: no network).

        Only a bare ``.keras`` file needs it: a run records its ``size_multiple``.
        """
        if network is None:
            return None
        import keras

        multiple = 1
        for layer in getattr(network, "layers", []):
            if isinstance(layer, keras.layers.Conv2D) and not isinstance(
                    layer, keras.layers.Conv2DTranspose):
                multiple *= int(layer.strides[0])
            else:
                multiple *= Inference.measured_size_multiple(layer) or 1
        return multiple

    # -- the graphs

    def serving_model(self):
        """The Keras object whose variables the graphs use (tracked by an export)."""
        from kstyle.nets.uint8 import Uint8Translator

        if getattr(self, "_serving", None) is None:
            self._serving = Uint8Translator(self.network, self.size_multiple,
                                            self.input_transform)
        return self._serving

    def graphs(self) -> dict[str, Callable]:
        """Each endpoint's function, by name: tensors in (in the order of its input
        ports), its output tensor out."""
        serving = self.serving_model()
        return {"stylize": lambda images: serving(images)}

    def functions(self, target: str | None = None) -> dict[str, Callable]:
        """:meth:`graphs`, each traced for ``target``: None for this machine's fastest
        kernels, ``"litert"`` or ``"onnx"`` for the ops that converter takes (kstyle's
        layers read it while the function is traced, see
        ``kstyle.nets.layers.portable_graph``)."""
        graphs = self.graphs()
        if target is None:
            return graphs
        from kstyle.nets.layers import portable_graph

        def traced_for_target(function):
            def traced(*args):
                with portable_graph(target):
                    return function(*args)
            return traced

        return {name: traced_for_target(function) for name, function in graphs.items()}

    def keras_call(self) -> Callable[..., np.ndarray]:
        """``call`` for the Keras network: each endpoint's graph as a ``tf.function``."""
        import tensorflow as tf

        functions = {name: tf.function(function, reduce_retracing=True)
                     for name, function in self.functions().items()}

        def call(name, **feeds):
            ports = self.signature[name].inputs
            return np.asarray(functions[name](*[p.as_feed(feeds[p.name]) for p in ports]))

        return call

    def translate_batch(self, images):
        """The network on a float ``[N, H, W, 3]`` batch in [-1, 1] (sides multiples of
        the size multiple, the input already derived): what ``kstyle eval`` scores
        against held-back targets. Kinds whose network takes more than the image write
        their own, or cannot be scored that way."""
        if len(self.signature.main.inputs) > 1:
            raise NotImplementedError(f"{type(self).__name__} takes more than an image")
        return self.network(images, training=False)

    # -- a user's call

    def check(self, inputs: dict) -> dict:
        """The keyword inputs of a call, checked, with defaults filled in: unknown names,
        missing inputs and out-of-range scalars raise one StyleOptionError naming each."""
        ports = {p.name: p for p in self.signature.main.inputs[1:]}
        known = set(ports) | set(self.options)
        problems = [f"{name}: not an input of this model (it takes: "
                    f"{', '.join(sorted(known)) or 'the image alone'})"
                    for name in inputs if name not in known]
        given = {}
        for name, port in ports.items():
            value = inputs.get(name, port.default)
            if value is None:
                problems.append(f"{name}: this model needs it: give {name}= ({port.doc})")
                continue
            problem = port.problem(value)
            if problem:
                problems.append(problem)
            given[name] = value
        if problems:
            raise StyleOptionError("; ".join(problems))
        return {**given, **{k: v for k, v in inputs.items() if k in self.options}}

    def run(self, image: np.ndarray, **inputs) -> np.ndarray:
        """One uint8 ``HxWx3`` image through the model, with the inputs :meth:`check`
        gave; returns uint8 ``HxWx3``."""
        from kstyle.data.images import image_to_rgb

        main = self.signature.main
        feeds = {main.inputs[0].name: image[None]}
        for port in main.inputs[1:]:
            value = inputs[port.name]
            feeds[port.name] = (image_to_rgb(value)[0][None] if port.type == IMAGE
                                else port.as_feed(value))
        return self.call(main.name, **feeds)[0]

    @property
    def batches(self) -> bool:
        """Whether :meth:`run_batch` runs several images in one endpoint call (the kind's
        call is its main endpoint on the image alone), so that a server gains by
        gathering same-shape requests."""
        return len(self.signature.main.inputs) == 1 and type(self).run is Inference.run

    def run_batch(self, images: list[np.ndarray], **inputs) -> list[np.ndarray]:
        """:meth:`run` on several uint8 ``HxWx3`` images of one shape, with the same
        inputs: one endpoint call where :attr:`batches`, else one call each."""
        if not self.batches or len(images) == 1:
            return [self.run(image, **inputs) for image in images]
        main = self.signature.main
        return list(self.call(main.name, **{main.inputs[0].name: np.stack(images)}))

    def clip(self, window: int = 8, **inputs):
        """How the frames of a clip run, one at a time: ``run(frame, new_scene=False) ->
        frame`` (uint8 ``HxWx3``), with the inputs :meth:`check` gave.

        Kinds whose network normalizes by instance statistics hold them steady across
        frames (a running mean over about ``window`` frames, restarted by ``new_scene``;
        see ``kstyle.nets.steady``); others, and exported files, run each frame as
        :meth:`run` does.
        """
        if self.network is None or len(self.signature.main.inputs) > 1:
            return lambda frame, new_scene=False: self.run(frame, **inputs)
        from kstyle.nets.steady import SteadyTranslator

        return SteadyTranslator(self.network, self.size_multiple, self.input_transform,
                                window)

    def tiled(self, image: np.ndarray, tile: int, out: np.ndarray | None = None,
              **inputs) -> np.ndarray:
        """:meth:`run` for a large image, tile by tile (needs the Keras network); the
        result goes into ``out`` if given (``image`` itself, say: see
        ``kstyle.nets.tiling.blend_tiles``)."""
        if len(self.signature.main.inputs) > 1:
            raise NotImplementedError(f"{type(self).__name__} has no tiled form")
        from kstyle.nets.tiling import TiledTranslator

        if self._tiler is None or self._tiler.tile < tile:
            self._tiler = TiledTranslator(self.network, self.size_multiple,
                                          self.input_transform, tile=tile,
                                          overlap=min(64, tile // 4))
        return self._tiler(image, out=out)
