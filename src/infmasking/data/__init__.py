"""Datasets (one MultimodalData contract) and batched augmentations."""
