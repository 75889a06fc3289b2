"""``kstyle import``: the reference implementations' ``.pth`` files read without PyTorch
(``pth``), their networks detected and converted into kstyle's (``convert``)."""
