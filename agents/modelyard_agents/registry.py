"""The product catalogue: every module in ``modelyard_agents.products`` exposing ``PRODUCT``.

Adding a product is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import products
from .contract import Product


def discover() -> dict[str, Product]:
    found: dict[str, Product] = {}
    for info in pkgutil.iter_modules(products.__path__):
        module = importlib.import_module(f"{products.__name__}.{info.name}")
        product = getattr(module, "PRODUCT", None)
        if isinstance(product, Product):
            found[product.slug] = product
    return dict(sorted(found.items()))


PRODUCTS: dict[str, Product] = discover()
