"""infmasking: multimodal contrastive learning that captures synergistic information.

Layout: ``data`` (datasets, augmentations) -> ``models`` (encoders, tokens, fusion, masking)
-> ``losses`` (objectives) -> ``training`` (Lightning module) -> ``evaluation`` (probes,
reports) -> ``cli``. ``dist`` holds the distributed helpers.
"""

__version__ = "0.1.0"
