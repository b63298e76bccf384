"""vqalign.features."""
