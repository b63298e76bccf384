"""The aligner's front end: the one feature sample rate every stage resamples to.

Audio conditioning and the aligner's 39-D recipe move here from ``vqalign.align`` in the
layout redesign; this module sits below ``io`` and ``align`` so both can import it.
"""

#: every feature (MFCC, the aligner's recipe, the store, the synthesizer) is computed on
#: audio resampled to this rate
FEATURE_SR = 16000
