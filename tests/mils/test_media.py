import numpy as np
import pytest

from mils.media import MediaError, load_audio, modality_of, sample_frames
from tests.conftest import write_audio, write_video


def _frame_index(image, step=6):
    return int(round(np.asarray(image).mean() / step))


def test_frames_are_sampled_at_segment_centres_by_seeking(tmp_path):
    video = write_video(tmp_path / "v.mp4", n_frames=40)
    frames = sample_frames(video, n=8)
    assert len(frames) == 8 and frames[0].size == (64, 48)
    indices = [_frame_index(f) for f in frames]
    expected = [int((i + 0.5) / 8 * 40) for i in range(8)]
    assert all(abs(a - b) <= 1 for a, b in zip(indices, expected)), (indices, expected)
    assert indices == sorted(indices)


def test_the_official_frame_choice_takes_every_nth_frame_from_0_squashed_to_224(tmp_path):
    """task_utils/video/utils.py frames2tensor: step = len(frames) // 8, frames[::step][:8], cv2.resize
    to 224 x 224. 43 frames: step 5, frames 0, 5, ..., 35 (the segment centres would be 2, 8, ...)."""
    video = write_video(tmp_path / "v.mp4", n_frames=43, step=5)
    frames = sample_frames(video, n=8, choice="official")
    assert [f.size for f in frames] == [(224, 224)] * 8
    assert [_frame_index(f, step=5) for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35]
    with pytest.raises(MediaError, match="fewer than the 8"):
        sample_frames(write_video(tmp_path / "short.mp4", n_frames=5), n=8, choice="official")


def test_bad_videos_are_named(tmp_path):
    with pytest.raises(MediaError, match="video not found"):
        sample_frames(tmp_path / "none.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01 not a video")
    with pytest.raises(MediaError, match="junk.mp4"):
        sample_frames(tmp_path / "junk.mp4")


def test_audio_is_mixed_to_mono_and_resampled(tmp_path):
    path = write_audio(tmp_path / "a.wav", seconds=1.0, rate=22050, channels=2)
    wave = load_audio(path, 16000)
    assert wave.ndim == 1 and wave.dtype == np.float32 and abs(len(wave) - 16000) <= 1
    assert len(load_audio(path, 16000, max_seconds=0.5)) == 8000
    (tmp_path / "bad.wav").write_bytes(b"RIFFjunk")
    with pytest.raises(MediaError, match="bad.wav"):
        load_audio(tmp_path / "bad.wav", 16000)


def test_modality_from_extension():
    assert [modality_of(p) for p in ("a.JPG", "b.mp4", "c.flac")] == ["image", "video", "audio"]
    with pytest.raises(MediaError, match="--modality"):
        modality_of("notes.txt")


def test_official_video_frames_are_resized_as_opencv_resizes_them():
    """Issue 49, item 2: the official frames2tensor resizes with cv2.resize (bilinear, no antialiasing);
    PIL's bilinear antialiases when it shrinks (up to ~50/255 a pixel apart here)."""
    import cv2
    import numpy as np
    from PIL import Image
    from skimage import data

    from mils.media import opencv_bilinear

    for picture in (data.astronaut(), data.chelsea(), data.coffee()):
        frame = Image.fromarray(picture).resize((320, 240))  # MSR-VTT's frame size
        ours = np.asarray(opencv_bilinear(frame, (224, 224))).astype(int)
        theirs = cv2.resize(np.asarray(frame), (224, 224), interpolation=cv2.INTER_LINEAR).astype(int)
        assert np.abs(ours - theirs).max() <= 1  # OpenCV rounds in fixed point
        assert np.abs(np.asarray(frame.resize((224, 224), Image.BILINEAR)).astype(int) - theirs).max() > 10
        up = np.asarray(opencv_bilinear(Image.fromarray(picture[:100, :150]), (224, 224))).astype(int)
        assert np.abs(up - cv2.resize(picture[:100, :150], (224, 224), interpolation=cv2.INTER_LINEAR)).max() <= 1
