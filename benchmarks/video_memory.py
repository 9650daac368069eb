"""Peak memory of frame sampling as the video gets longer (it seeks, so it should not grow).

    .venv/bin/python benchmarks/video_memory.py      # also part of `make bench`

Each measurement runs in a fresh process: peak RSS (VmHWM, reset after imports) minus the RSS
before sampling (Linux /proc).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBE = """
import sys, time
sys.path.insert(0, {root!r})
import av, numpy, PIL.Image
from mils.media import sample_frames

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark (VmHWM)
base = status("VmRSS:")
start = time.perf_counter()
frames = sample_frames({path!r}, 8)
print(status("VmHWM:") - base, time.perf_counter() - start)
"""


def write_video(path: Path, seconds: int, fps: int = 25, size=(640, 360)) -> None:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"g": "50"}  # a keyframe every 2 s, like typical web video
        noise = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        for i in range(seconds * fps):
            frame = np.roll(noise, i * 3, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (10, 60, 240):
            path = Path(tmp) / f"v{seconds}.mp4"
            write_video(path, seconds)
            out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), path=str(path))],
                                 capture_output=True, text=True, check=True).stdout.split()
            decoded_mb = 640 * 360 * 3 * 25 * seconds / 2**20
            rows.append({"seconds": seconds, "file_mb": round(path.stat().st_size / 2**20, 1),
                         "all_frames_decoded_mb": round(decoded_mb), "peak_rss_growth_mb": round(int(out[0]) / 1024, 1),
                         "sample_8_frames_s": round(float(out[1]), 2)})
            print(json.dumps(rows[-1]))
    target = ROOT / "outputs" / "bench" / "video_memory.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
