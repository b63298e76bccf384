"""vqalign.hmm."""
