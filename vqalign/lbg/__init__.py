"""vqalign.lbg."""
