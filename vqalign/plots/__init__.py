"""vqalign.plots."""
