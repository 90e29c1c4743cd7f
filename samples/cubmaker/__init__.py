"""Deterministic fine-grained bird data set maker (CUB-200-2011 layout, Reed et al. captions).

Run `python3 -m samples.cubmaker --help`; see samples/README.md.
"""
