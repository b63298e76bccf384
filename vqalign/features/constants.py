"""The one feature sample rate: every feature (MFCC, the aligner's recipe, the store, the
synthesizer, the Sphinx front end) is computed on audio resampled to it. It sits in its own
module, below ``mfcc`` and ``frontend``, so that both (and ``io``) can import it."""

#: Hz
FEATURE_SR = 16000
