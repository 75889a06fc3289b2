"""kstyle: image style transfer and image-to-image translation for Keras 3.

Quick use::

    import kstyle
    out = kstyle.stylize("photo.jpg", model="saved_models/quickstart")  # a trained model
    out = kstyle.stylize("photo.jpg", style="starry_night.jpg")         # Gatys et al.
    run = kstyle.import_weights(["horse2zebra.pth"])   # a reference model, as a kstyle run
"""

__version__ = "0.1.0"


def __getattr__(name):
    # The Python API is imported lazily so that `import kstyle` (and `kstyle --help`)
    # does not pay for importing TensorFlow.
    if name in ("stylize", "load", "transfer_style", "Stylizer", "Translator"):
        from kstyle import api

        return getattr(api, name)
    if name == "import_weights":
        from kstyle.importers import convert

        return convert.import_weights
    raise AttributeError(f"module 'kstyle' has no attribute {name!r}")


__all__ = ["stylize", "load", "transfer_style", "Stylizer", "Translator", "import_weights",
           "__version__"]
