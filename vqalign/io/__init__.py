"""vqalign.io."""
