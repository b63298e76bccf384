"""vqalign.align."""
