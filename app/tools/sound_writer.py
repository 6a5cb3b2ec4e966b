"""Writing sound files and videos with sound (tests, the audio benchmark) with PyAV's FFmpeg,
the one the application decodes with: AAC in M4A/MP4, MP3, Opus in Ogg, FLAC, WAV.

Also the sound the benchmark and the tests are made of: synthetic music (notes with harmonics
and decays, chords), noise, and the edits a re-upload shows (noise at an SNR, a room: reverb,
band-limiting and noise; speed; level; a clip).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from app.tools.video_writer import GOP

#: Codec and container by file suffix.
CODECS = {
    ".m4a": ("aac", "mp4"),
    ".mp4": ("aac", "mp4"),
    ".mp3": ("libmp3lame", "mp3"),
    ".ogg": ("libopus", "ogg"),
    ".opus": ("libopus", "ogg"),
    ".flac": ("flac", "flac"),
    ".wav": ("pcm_s16le", "wav"),
}


def _audio_stream(container, codec: str, rate: int, bit_rate: int | None):
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "mono"
    if bit_rate:
        stream.bit_rate = bit_rate
    return stream


def _encode_sound(container, stream, samples: np.ndarray, rate: int) -> None:
    import av

    x = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
    fmt = stream.codec_context.codec.audio_formats[0].name if stream.codec_context.codec else "flt"
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=stream.codec_context.sample_rate)
    step = 4096
    for i in range(0, x.shape[0], step):
        frame = av.AudioFrame.from_ndarray(x[None, i : i + step], format="flt", layout="mono")
        frame.sample_rate = rate
        for fr in resampler.resample(frame):
            for packet in stream.encode(fr):
                container.mux(packet)
    for fr in resampler.resample(None):
        for packet in stream.encode(fr):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_sound(
    path: Path,
    samples: np.ndarray,
    rate: int,
    *,
    bit_rate: int | None = None,
    out_rate: int | None = None,
) -> None:
    """Encode mono float ``samples`` (at ``rate``) into ``path``, the codec by its suffix
    (:data:`CODECS`); ``bit_rate`` in bits a second (None: the encoder's default);
    ``out_rate`` the file's sample rate (None: ``rate``; Opus: 48 kHz)."""
    import av

    codec, fmt = CODECS[path.suffix.lower()]
    out = out_rate or (48000 if codec == "libopus" else rate)
    with av.open(str(path), "w", format=fmt) as container:
        stream = _audio_stream(container, codec, out, bit_rate)
        _encode_sound(container, stream, samples, rate)


def write_video_with_sound(
    path: Path,
    frames: list[np.ndarray],
    fps: float,
    samples: np.ndarray | None,
    rate: int,
    times_ms: list[int] | None = None,
) -> None:
    """An MP4 of ``frames`` (HxWx3 uint8 RGB, MPEG-4 Part 2, as
    :func:`app.tools.video_writer.write_mp4`) with ``samples`` as its AAC sound (None: no
    sound); ``times_ms``: each frame's time in milliseconds (a variable frame rate), or None
    for ``fps``."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        h, w = frames[0].shape[:2]
        video = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = w, h
        video.pix_fmt = "yuv420p"
        video.bit_rate = int(w * h * fps)
        video.codec_context.gop_size = GOP
        if times_ms is not None:
            video.codec_context.time_base = Fraction(1, 1000)
        sound = None if samples is None else _audio_stream(container, "aac", rate, 96000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None and samples is not None:
            _encode_sound(container, sound, samples, rate)


# -- sound to test with ------------------------------------------------------------------------


def music(seconds: float, seed: int, rate: int = 22050) -> np.ndarray:
    """Synthetic music: a melody of notes (0.1-0.5 s, 110-880 Hz, 5 harmonics, decaying) over
    a slow chord, different for each ``seed``."""
    r = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = np.zeros(n)
    pos = 0
    while pos < n:
        d = int(r.uniform(0.1, 0.5) * rate)
        f = 110 * 2 ** (r.integers(0, 37) / 12)
        seg = t[pos : pos + d] - t[pos]
        for h in range(1, 6):
            x[pos : pos + d] += np.sin(2 * np.pi * f * h * seg) / h * np.exp(-4 * seg)
        pos += d
    root = 55 * 2 ** (r.integers(0, 12) / 12)
    for k in (1, 1.26, 1.5):
        x += 0.3 * np.sin(2 * np.pi * root * 2 * k * t) * (0.6 + 0.4 * np.sin(2 * np.pi * t / 3))
    return (0.3 * x / max(1e-9, np.abs(x).max())).astype(np.float32)


def tone(seconds: float, freqs: tuple[float, ...], rate: int = 22050) -> np.ndarray:
    """A steady tone or chord."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    return (0.3 * x / len(freqs)).astype(np.float32)


def noise(seconds: float, seed: int, rate: int = 22050, colour: float = 0.0) -> np.ndarray:
    """Noise: white (``colour`` 0), pink-ish (1) or brown-ish (2)."""
    r = np.random.default_rng(seed)
    n = int(seconds * rate)
    spec = np.fft.rfft(r.normal(0, 1, n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / rate), 1.0)
    x = np.fft.irfft(spec / f ** (colour / 2), n)
    return (0.3 * x / max(1e-9, np.abs(x).max())).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise added at ``snr_db`` below the sound's power."""
    p = float(np.mean(np.square(x))) or 1e-12
    r = np.random.default_rng(seed)
    return (x + r.normal(0, np.sqrt(p / 10 ** (snr_db / 10)), x.shape[0])).astype(np.float32)


def room(x: np.ndarray, rate: int, seed: int = 0, snr_db: float = 15.0) -> np.ndarray:
    """A re-recording through a room: a loudspeaker's and a phone's band (250-4,000 Hz), an
    exponentially decaying reverb (0.5 s, with early reflections), and room noise at
    ``snr_db``."""
    from scipy.signal import butter, fftconvolve, sosfilt

    r = np.random.default_rng(seed)
    n = int(0.5 * rate)
    tail = r.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB over 0.5 s
    ir = 0.25 * tail / np.abs(tail).max()
    ir[0] = 1.0
    for d, g in ((0.011, 0.6), (0.017, 0.45), (0.029, 0.35)):
        ir[int(d * rate)] += g
    y = fftconvolve(x, ir)[: x.shape[0]]
    y = sosfilt(butter(4, [250, min(4000, rate / 2 - 1)], "bandpass", fs=rate, output="sos"), y)
    y = 0.3 * y / max(1e-9, np.abs(y).max())
    return add_noise(y.astype(np.float32), snr_db, seed + 1)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Played ``factor`` times faster, pitch and tempo together (as a video sped up)."""
    n = int(x.shape[0] / factor)
    return np.interp(np.arange(n) * factor, np.arange(x.shape[0]), x).astype(np.float32)
