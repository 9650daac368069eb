"""Reading media with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from mils.errors import InputError


class MediaError(InputError):
    """A sample's media could not be read; the message names the input."""


def load_image(media: Any) -> Image.Image:
    """An RGB PIL image from a path or a PIL image."""
    if isinstance(media, Image.Image):
        return media.convert("RGB")
    path = Path(media)
    if not path.is_file():
        raise MediaError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise MediaError(f"cannot read image {path}: {err}") from err


VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
AUDIO_EXTS = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aiff"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def modality_of(path: str | Path) -> str:
    """image, video or audio, by file extension."""
    suffix = Path(path).suffix.lower()
    for name, exts in (("image", IMAGE_EXTS), ("video", VIDEO_EXTS), ("audio", AUDIO_EXTS)):
        if suffix in exts:
            return name
    raise MediaError(f"cannot tell the modality of {path} from its extension; pass --modality image|video|audio")


def sample_frames(path: str | Path, n: int = 8, choice: str = "centres") -> list[Image.Image]:
    """``n`` frames. ``centres``: at the centres of ``n`` equal segments, found by seeking (only the
    frames from the nearest keyframe to each target are decoded, one at a time, so memory does not
    grow with the video's length). ``official``: as the MILS code (``task_utils/video/utils.py``
    ``frames2tensor``): every ``N // n``-th decoded frame from frame 0, the first ``n``, each squashed
    to 224 x 224 (bilinear; the official code uses OpenCV's, which rounds differently)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    if n < 1:
        raise InputError(f"frames must be >= 1, got {n}")
    if choice == "official":
        return _official_frames(path, n)
    if choice != "centres":
        raise InputError(f"frame choice is centres or official, not {choice!r}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            base = stream.time_base
            if stream.duration:
                duration = float(stream.duration * base)
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                raise MediaError(f"video {path} has no duration in its header")
            start = float(stream.start_time * base) if stream.start_time else 0.0
            frames = []
            for i in range(n):
                target = start + (i + 0.5) / n * duration
                container.seek(int(target / base), stream=stream, backward=True, any_frame=False)
                chosen = None
                for frame in container.decode(stream):
                    chosen = frame
                    if frame.time is not None and frame.time + 1e-6 >= target:
                        break
                if chosen is None:
                    raise MediaError(f"video {path}: no frame could be decoded near {target:.2f}s")
                frames.append(chosen.to_image().convert("RGB"))
            return frames
    except (av.error.FFmpegError, IndexError) as err:
        raise MediaError(f"cannot read video {path}: {err}") from err


def opencv_bilinear(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` resized as ``cv2.resize(..., interpolation=INTER_LINEAR)`` resizes it (the official
    ``frames2tensor``): bilinear over the 2 x 2 nearest source pixels with half-pixel centres and no
    antialiasing when it shrinks. PIL's bilinear widens its filter when it shrinks (up to 33/255 a
    pixel apart on MSR-VTT-sized frames); this is within 1/255 of OpenCV's fixed-point rounding."""
    import numpy as np
    import torch

    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(pixels, size=(size[1], size[0]), mode="bilinear", align_corners=False,
                                          antialias=False)
    return Image.fromarray(out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())


def _official_frames(path: Path, n: int) -> list[Image.Image]:
    import av

    try:
        with av.open(str(path)) as container:  # first pass: the frame count, as len(list of every frame)
            total = sum(1 for _ in container.decode(container.streams.video[0]))
        if total < n:
            raise MediaError(f"video {path} has {total} frames, fewer than the {n} the official choice takes")
        wanted, frames = set(range(0, (total // n) * n, total // n)[:n]), []
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                if i in wanted:
                    frames.append(opencv_bilinear(frame.to_image().convert("RGB"), (224, 224)))
                if len(frames) == n:
                    break
        return frames
    except (av.error.FFmpegError, IndexError) as err:
        raise MediaError(f"cannot read video {path}: {err}") from err


def load_audio(path: str | Path, sample_rate: int, max_seconds: float | None = None) -> "numpy.ndarray":  # noqa: F821
    """Mono float32 waveform resampled to ``sample_rate`` (polyphase filter)."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"audio not found: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise MediaError(f"cannot read audio {path}: {err}") from err
    if data.size == 0:
        raise MediaError(f"audio {path} is empty")
    wave = data.mean(axis=1)
    if rate != sample_rate:
        from math import gcd

        g = gcd(int(rate), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, int(rate) // g).astype(np.float32)
    if max_seconds is not None:
        wave = wave[: int(max_seconds * sample_rate)]
    return wave


def spread_windows(wave: "numpy.ndarray", sample_rate: int, clips: int, seconds: float) -> list:  # noqa: F821
    """``clips`` windows of ``seconds`` spread over the whole waveform, as ImageBind reads audio
    (pytorchvideo's ConstantClipsPerVideoSampler: starts at k * (duration - seconds) / clips, exact
    fractions, sample indices truncated). A file shorter than a window gives the whole file each time."""
    from fractions import Fraction

    duration = len(wave) / sample_rate
    step = Fraction(max(duration - seconds, 0)) / clips
    starts = [step * k for k in range(clips)]
    return [wave[int(start * sample_rate) : int((start + Fraction(seconds)) * sample_rate)] for start in starts]


def media_problem(path: str | Path) -> str | None:
    """Why a media file cannot be used, or None. An image is decoded whole (a truncated JPEG has a
    valid header); a video must have a video stream, an audio file at least one frame."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder, not a media file"
    if not path.is_file():
        return f"missing file {path}"
    if path.stat().st_size == 0:
        return f"empty file {path}"
    try:
        kind = modality_of(path)
    except MediaError:
        kind = "image"
    try:
        if kind == "image":
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:  # verify() reads no pixels: decode them (truncated files fail here)
                image.load()
        elif kind == "video":
            import av

            with av.open(str(path)) as container:
                if not container.streams.video:
                    return f"no video stream in {path}"
        else:
            import soundfile as sf

            if sf.info(str(path)).frames == 0:
                return f"audio {path} has no frames"
    except Exception as err:  # each decoder raises its own types for corrupt files
        return f"unreadable {kind} {path}: {err}"
    return None


def sample_media_problem(media: Any) -> str | None:
    """Why a sample's media cannot be used, or None: a file is checked whole, a mapping of files
    (style transfer's content and style) each of its files; a text or an in-memory object has
    nothing to read."""
    if isinstance(media, Path):
        return media_problem(media)
    if isinstance(media, dict):
        return next((f"{role}: {problem}" for role, path in media.items()
                     if isinstance(path, Path) and (problem := media_problem(path))), None)
    return None
