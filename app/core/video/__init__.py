"""Video and animated pictures, by job: ``probe`` (open, frame rate, the demux pass), ``plan``
(which frames are sampled, which packets they need), ``decode`` (selective decoding, parallel
segments), ``frames`` (the sampled frames' hashes), ``strip`` (the keyframe strip),
``animated`` (GIF/WebP), ``scrub`` (the scrubber's frames) and ``analysis`` (one file's
analysis, putting them together). Names with a leading underscore are shared between these
modules only.
"""
