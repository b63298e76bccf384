"""Other aligners run on the same audio and transcripts, returning plain tiers.

:class:`PocketsphinxAligner` runs pocketsphinx 5 forced alignment with the settings
that align every synthetic utterance here (the peers notes, PEERS.md, beside the dev set)::

    Decoder(lm=None, bestpath=False, beam=1e-200, pbeam=1e-200, wbeam=1e-150)
    reinit_feat(); set_align_text(text); decode        # pass 1: word segmentation
    set_alignment(); reinit_feat(); decode              # pass 2: phone/state alignment
    get_alignment()                                     # words and phones (10 ms frames)

Words missing from pocketsphinx's dictionary are added first (``add_word``) with their
CMUdict pronunciation, or vqalign's letter-to-sound guess.

With these settings 7 of the 200 devdata utterances (eSpeak voices, sentences added
after PEERS.md was written) still get no first-pass hypothesis; such an utterance is
retried once with every beam at 1e-300 (:data:`PS_RETRY`), which aligns all 200.
The retries are counted in ``n_retried_`` and their time is part of the timing.
"""

from __future__ import annotations

import time

import numpy as np

from vqalign._validation import check_audio
from vqalign.exceptions import AlignmentError, ParameterError

PS_SAMPLE_RATE = 16000
PS_SETTINGS = {"lm": None, "bestpath": False, "beam": 1e-200, "pbeam": 1e-200, "wbeam": 1e-150}
PS_RETRY = {"beam": 1e-300, "pbeam": 1e-300, "wbeam": 1e-300}
_PS_SKIP = {"<sil>", "<s>", "</s>", "sil", "SIL", "[NOISE]", "+NSN+", "+SPN+"}


def _to_int16_16k(y: np.ndarray, sr: int) -> bytes:
    if sr != PS_SAMPLE_RATE:
        import soxr
        y = soxr.resample(y, sr, PS_SAMPLE_RATE).astype(np.float32)
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2")
    return pcm.tobytes()


class PocketsphinxAligner:
    """pocketsphinx forced alignment (bundled US English acoustic model and dictionary).

    Parameters
    ----------
    **settings
        Decoder settings overriding :data:`PS_SETTINGS`.

    Attributes
    ----------
    added_words_ : dict of str to list of str
        Words added to pocketsphinx's dictionary, with the phones used.
    """

    def __init__(self, *, retry: bool = True, **settings):
        self.settings = dict(PS_SETTINGS, **settings)
        self.retry = retry
        self._decoders: dict[bool, object] = {}
        self.added_words_: dict[str, list[str]] = {}
        self.n_retried_ = 0
        self.retried_seconds_ = 0.0   # wall time of retried utterances (both attempts)
        self.retried_audio_s_ = 0.0

    def _get_decoder(self, wide: bool = False):
        if wide not in self._decoders:
            try:
                from pocketsphinx import Decoder
            except ImportError:
                raise ParameterError("pocketsphinx is not installed; pip install pocketsphinx "
                                     "(or run the benchmark with --no-pocketsphinx)") from None
            settings = dict(self.settings, **PS_RETRY) if wide else self.settings
            self._decoders[wide] = Decoder(loglevel="FATAL", **settings)
        return self._decoders[wide]

    @property
    def decoder(self):
        """The decoder with the main settings."""
        return self._get_decoder(False)

    def _ensure_words(self, dec, words: list[str]) -> None:
        from vqalign.align.lexicon import Lexicon, letter_to_sound

        lex = Lexicon.cmudict()
        phoneset = set(lex.phone_set)
        for w in dict.fromkeys(words):
            if dec.lookup_word(w) is not None:
                continue
            phones = lex.pronounce(w) if w in lex else letter_to_sound(w)
            phones = [p for p in phones if p in phoneset] or ["AH"]
            dec.add_word(w, " ".join(phones), True)
            self.added_words_[w] = phones

    @staticmethod
    def _decode(dec, buf: bytes) -> None:
        dec.reinit_feat()
        dec.start_utt()
        dec.process_raw(buf, full_utt=True)
        dec.end_utt()

    def align(self, audio, transcript: str, *, sr: int = PS_SAMPLE_RATE) -> dict:
        """Align one utterance.

        Parameters
        ----------
        audio : ndarray, float32 1-D
            Samples in [-1, 1] (resampled to 16 kHz if ``sr`` differs).
        transcript : str
            Text; normalized with :func:`vqalign.align.text.normalize_words`.

        Returns
        -------
        dict
            ``{"words": [(start_s, end_s, word), ...], "phones": [(start_s, end_s, PH), ...]}``
            without silences.

        Raises
        ------
        AlignmentError
            If pocketsphinx finds no alignment.
        """
        from vqalign.align.text import normalize_words

        y = check_audio(audio, sr)
        words = normalize_words(transcript, unit="phones")
        if not words:
            raise ParameterError(f"transcript {transcript!r:.60} has no words to align")
        buf = _to_int16_16k(y, int(sr))
        t0 = time.perf_counter()
        try:
            al, frate = self._two_passes(self.decoder, words, buf)
        except AlignmentError:
            if not self.retry:
                raise
            self.n_retried_ += 1
            try:
                al, frate = self._two_passes(self._get_decoder(True), words, buf)
            finally:
                self.retried_seconds_ += time.perf_counter() - t0
                self.retried_audio_s_ += y.size / sr
        out_words, out_phones = [], []
        for w in al:
            name = w.name
            if name not in _PS_SKIP:
                base = name.split("(")[0]
                out_words.append((w.start / frate, (w.start + w.duration) / frate, base))
            for p in w:
                if p.name not in _PS_SKIP:
                    out_phones.append((p.start / frate, (p.start + p.duration) / frate, p.name))
        if [w[2] for w in out_words] != words:
            raise AlignmentError(f"pocketsphinx aligned {len(out_words)} words but the "
                                 f"transcript has {len(words)}")
        return {"words": out_words, "phones": out_phones}

    def _two_passes(self, dec, words, buf):
        self._ensure_words(dec, words)
        try:
            dec.set_align_text(" ".join(words))
            self._decode(dec, buf)
            if dec.hyp() is None:
                raise AlignmentError("pocketsphinx found no word alignment (first pass)")
            dec.set_alignment()
            self._decode(dec, buf)
            al = dec.get_alignment()
        except RuntimeError as exc:
            raise AlignmentError(f"pocketsphinx failed to align: {exc}") from None
        if al is None:
            raise AlignmentError("pocketsphinx found no phone alignment (second pass)")
        return al, float(dec.config["frate"])

