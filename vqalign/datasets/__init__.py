"""vqalign.datasets."""
