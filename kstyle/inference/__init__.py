"""Inference: trained models run on any backend (``stylizer``), and the exported files'
metadata and runners (``exported``). What a kind takes and gives is its declaration in
``kstyle.models.signature``; the uint8 graph around a network is ``kstyle.nets.uint8``."""
