"""The perceptual style objective that Gatys et al.'s optimization and Johnson et al.'s
feed-forward stylizer share: a content term, a Gram-matrix style term, total variation."""

from __future__ import annotations

import keras

from kstyle import losses


class PerceptualStyleObjective:
    """Mixin for models with the objective

        content = mean((F_c(x) - P)^2)                      at content_layer
        style   = sum_l w_l * mean((G(F_l(x)) - A_l)^2)      over style_layers
        tv      = total_variation(x)
        loss    = content_weight * content + style_weight * style + tv_weight * tv

    with ``F_l`` VGG19 features of the image ``x``, ``P`` the content's features, ``G`` the
    Gram matrix (``kstyle.losses.gram_matrix``) and ``A_l`` the style's. The model holds
    ``feature_extractor`` and calls :meth:`init_objective` from its ``__init__``.
    """

    def init_objective(self, feature_extractor, content_layer, style_layers,
                       style_layer_weights, content_weight, style_weight, tv_weight):
        """Stores the VGG19 feature extractor and the objective's layers and weights.

        ``style_layer_weights`` None gives each layer ``1 / len(style_layers)``.
        """
        self.feature_extractor = feature_extractor
        self.content_layer = content_layer
        self.style_layers = tuple(style_layers)
        if not self.style_layers:
            raise ValueError("style_layers must name at least one VGG19 layer.")
        if style_layer_weights is None:
            style_layer_weights = [1.0 / len(self.style_layers)] * len(self.style_layers)
        if len(style_layer_weights) != len(self.style_layers):
            raise ValueError(
                f"style_layer_weights has {len(style_layer_weights)} values for "
                f"{len(self.style_layers)} style layers.")
        self.style_layer_weights = tuple(float(w) for w in style_layer_weights)
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)

    def weighted_objective(self, image, features, content_features, style_grams) -> dict:
        """The weighted loss and its unweighted terms, from ``image``'s VGG ``features``."""
        content = losses.content_loss(features[self.content_layer], content_features)
        style = sum(weight * losses.style_loss(losses.gram_matrix(features[layer]),
                                               style_grams[layer])
                    for layer, weight in zip(self.style_layers, self.style_layer_weights))
        tv = losses.total_variation_loss(image)
        loss = (self.content_weight * content + self.style_weight * style
                + self.tv_weight * tv)
        return {"loss": loss, "content_loss": content, "style_loss": style, "tv_loss": tv}

    def objective_config(self) -> dict:
        """The objective's part of ``get_config``."""
        return {
            "feature_extractor": keras.saving.serialize_keras_object(self.feature_extractor),
            "content_layer": self.content_layer,
            "style_layers": list(self.style_layers),
            "style_layer_weights": list(self.style_layer_weights),
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "tv_weight": self.tv_weight,
        }
