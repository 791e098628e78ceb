"""Typed models of the 19 jangar kinds and the generator of their CRDs.

One module per API group (`agents` is a package, one module per kind family); `meta` holds what every
kind shares, `registry` lists the kinds with their API names, `crdgen` writes `charts/agents/crds`.
"""
