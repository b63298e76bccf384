"""vqalign.bench."""
