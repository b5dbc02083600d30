"""Frame sources behind one small interface: the Pi camera, a video file, a desktop webcam.

`open()` starts it, `read()` returns the next Frame or None at the end of a file, `close()`
releases the device. Failures raise SourceError naming the device or file. picamera2 is
imported only inside PiCameraSource, so everything else runs on any machine.
"""
from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

import numpy as np

from appliance.errors import SourceError, SourceNotInstalled, first_line
from appliance.frames import Frame, rgb_to_yuv420

log = logging.getLogger(__name__)


class FrameSource:
    name = "source"
    live = True  # a live source has no end; a file does

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class VideoFileSource(FrameSource):
    """Decode a video file with PyAV; frames carry the file's timestamps and come out upright.

    `realtime=True` paces reading at the file's own clock and, like a camera that keeps
    only its newest frame, skips the frames that are already late (latest frame wins), so
    a slow consumer sees a lower frame rate and never a growing lag.
    """

    live = False

    def __init__(self, path: str | Path, pixel_format: str = "RGB", realtime: bool = False, clock=time.monotonic, sleep=time.sleep):
        if pixel_format not in ("RGB", "YUV420"):
            raise ValueError(f"pixel_format must be RGB or YUV420, not {pixel_format!r}")
        self.path = Path(path)
        self.name = str(self.path)
        self.pixel_format = pixel_format
        self.realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self._container = None
        self._frames = None
        self._index = 0
        self._start_wall = None
        self._t0 = None  # the file's first timestamp; _timestamp's offset and last value with it
        self._offset, self._last_t = 0.0, None
        self._matrix: tuple[int, int, int, int] | None = None  # display_matrix of the open file
        self.fps = 0.0
        self.skipped = 0

    def open(self) -> None:
        import av

        try:
            self._container = av.open(str(self.path))
        except FileNotFoundError:
            raise SourceError(f"video file not found: {self.path}") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"video file {self.path} cannot be opened: {first_line(exc)}") from None
        if not self._container.streams.video:  # an audio-only file (a voice memo, music)
            self._container.close()
            self._container = None
            raise SourceError(f"video file {self.path} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self.fps = float(stream.average_rate or stream.guessed_rate or 30)
        self._frames = self._container.decode(stream)
        self._index = 0
        self._start_wall = None
        self._t0 = None
        self._matrix = None

    def _next_decoded(self):
        import av

        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError as exc:
            raise SourceError(f"video file {self.path} cannot be decoded at frame {self._index}: {first_line(exc)}") from None

    def read(self) -> Frame | None:
        if self._frames is None:
            raise SourceError(f"video file {self.path} is not open")
        decoded = self._next_decoded()
        if decoded is None:
            return None
        t = self._timestamp(decoded)
        if self.realtime:
            now = self._clock()
            if self._start_wall is None:
                self._start_wall = now - t
            # Latest frame wins: drop the frames whose time has already passed.
            while True:
                late = (self._clock() - self._start_wall) - t
                if late <= 1.0 / max(self.fps, 1.0):
                    break
                newer = self._next_decoded()
                if newer is None:
                    break
                decoded, t = newer, self._timestamp(newer)
                self.skipped += 1
            wait = t - (self._clock() - self._start_wall)
            if wait > 0:
                self._sleep(wait)
        frame = Frame(self._to_array(decoded), self.pixel_format, t, self._index)
        self._index += 1
        return frame

    def _timestamp(self, decoded) -> float:
        """Seconds since the first frame, never going back: a file whose clock restarts (two
        recordings joined) goes on one frame after where it was, as a camera's clock would."""
        t = decoded.time if decoded.time is not None else self._index / max(self.fps, 1.0)
        if self._t0 is None:
            self._t0, self._offset, self._last_t = t, 0.0, None
        t = float(t - self._t0) + self._offset
        if self._last_t is not None and t < self._last_t:
            step = 1.0 / max(self.fps, 1.0)
            self._offset += self._last_t + step - t
            t = self._last_t + step
        self._last_t = t
        return t

    def _to_array(self, decoded) -> np.ndarray:
        if self._matrix is None:  # the stream's, read once per file (see close())
            self._matrix = display_matrix(decoded)
        rgb = upright(decoded.to_ndarray(format="rgb24"), self._matrix)
        if self.pixel_format == "YUV420":  # the Pi's layout, full range as frames.to_rgb reads it
            h, w = rgb.shape[:2]
            return rgb_to_yuv420(rgb[: h - h % 2, : w - w % 2])
        return rgb

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
        if self._matrix is not None:
            # PyAV keeps a frame whose side data was read in a reference cycle, and with it the
            # decoder and its threads, until Python's cycle collector runs, which may be never in
            # a loop that allocates few objects: a soak replaying a clip gained 2 threads and
            # 0.5 MB per play (reading side data on every frame: hundreds of threads a minute).
            self._matrix = None
            gc.collect()


def display_matrix(decoded) -> tuple[int, int, int, int]:
    """How a player shows a decoded video frame: the signs of its display matrix's a, b, c, d
    (ffmpeg's x' = a x + c y, y' = b x + d y), from the frame's DISPLAYMATRIX side data; else
    from PyAV's rotation angle, which cannot tell a mirror (a mirrored phone clip reads as
    -180 degrees: turned, it would be upside down). Quarter turns and mirrors only."""
    for side in getattr(decoded, "side_data", None) or ():
        if getattr(getattr(side, "type", None), "name", "") == "DISPLAYMATRIX":
            m = np.frombuffer(bytes(side), dtype=np.int32)
            if m.size == 9:
                a, b, c, d = (int(v) for v in (m[0], m[1], m[3], m[4]))
                if abs(a) >= abs(b):
                    return int(np.sign(a)) or 1, 0, 0, int(np.sign(d)) or 1
                return 0, int(np.sign(b)) or 1, int(np.sign(c)) or 1, 0
    rotation = int(round(getattr(decoded, "rotation", 0) or 0)) % 360
    return {90: (0, -1, 1, 0), 180: (-1, 0, 0, -1), 270: (0, 1, -1, 0)}.get(rotation, (1, 0, 0, 1))


def upright(image: np.ndarray, matrix: tuple[int, int, int, int]) -> np.ndarray:
    """The picture as the display matrix shows it (see display_matrix)."""
    a, b, c, d = matrix
    if a == 0:  # a quarter turn: the stored rows become columns
        image, flip_rows, flip_columns = image.swapaxes(0, 1), b < 0, c < 0
    else:
        flip_rows, flip_columns = d < 0, a < 0
    if flip_rows:
        image = image[::-1]
    if flip_columns:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


class WebcamSource(FrameSource):
    """A V4L2 webcam on a desktop, through PyAV's v4l2 input."""

    def __init__(self, index: int = 0, width: int = 640, height: int = 480, fps: float = 30.0, rotation: int = 0):
        self.device = f"/dev/video{index}"
        self.rotation = rotation
        self.name = self.device
        self.size = (width, height)
        self.fps = fps
        self._container = None
        self._frames = None
        self._index = 0

    def open(self) -> None:
        import av

        options = {"video_size": f"{self.size[0]}x{self.size[1]}", "framerate": str(int(self.fps))}
        try:
            self._container = av.open(self.device, format="v4l2", options=options)
            self._frames = self._container.decode(video=0)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"webcam {self.device} cannot be opened: {first_line(exc)}") from None
        self._index = 0

    def read(self) -> Frame | None:
        import av

        try:
            decoded = next(self._frames)
        except (StopIteration, av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"webcam {self.device} stopped delivering frames: {first_line(exc)}") from None
        image = decoded.to_ndarray(format="rgb24")
        if self.rotation == 180:
            image = np.ascontiguousarray(image[::-1, ::-1])
        frame = Frame(image, "RGB", time.monotonic(), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None


class PiCameraSource(FrameSource):
    """The Pi camera through picamera2: `main` for preview, a small `lores` stream for inference.

    On a Pi 4 and older the lores stream must be YUV420; a Pi 5 may give RGB. picamera2
    keeps only the newest frame (queue=False), so a slow loop never works on stale frames.
    """

    def __init__(self, index: int = 0, main_size=(640, 480), lores_size=(320, 240), fps: float = 30.0,
                 lores_format: str = "auto", timeout_s: float = 3.0, rotation: int = 0):
        self.index = index
        self.rotation = rotation
        self.name = f"Pi camera {index}"
        self.main_size = tuple(main_size)
        self.lores_size = tuple(lores_size)
        self.fps = fps
        self.timeout_s = timeout_s
        self.lores_format = lores_format if lores_format != "auto" else _default_lores_format()
        self._camera = None
        self._index = 0

    def open(self) -> None:
        """Start the camera. One that opens but fails to configure or start is closed again:
        libcamera would keep it acquired, and every reopen after would fail as busy."""
        try:
            import libcamera  # python3-libcamera, which python3-picamera2 depends on
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceNotInstalled(f"{self.name}: picamera2 is not installed ({exc}); on Raspberry Pi OS: apt install "
                                     "python3-picamera2; elsewhere use --source webcam or --source VIDEO_FILE") from None
        try:
            cameras = Picamera2.global_camera_info()
            if self.index >= len(cameras):
                raise SourceError(f"{self.name}: no camera found (libcamera sees {len(cameras)}); check the ribbon cable")
            camera = Picamera2(self.index)
            try:
                # "BGR888" is libcamera's name for R, G, B byte order in memory.
                fmt = "YUV420" if self.lores_format == "YUV420" else "BGR888"
                options = {}
                if self.rotation == 180:  # libcamera turns the picture as a horizontal + vertical flip, in the sensor
                    options["transform"] = libcamera.Transform(hflip=1, vflip=1)
                config = camera.create_video_configuration(
                    main={"size": self.main_size},
                    lores={"size": self.lores_size, "format": fmt},
                    buffer_count=4,
                    queue=False,
                    controls={"FrameRate": self.fps},
                    # full-range BT.601 YUV, which frames.to_rgb decodes: picamera2's default for a
                    # main stream under 1280x720 is SMPTE 170M, limited range (black at Y = 16)
                    colour_space=libcamera.ColorSpace.Sycc(),
                    **options,
                )
                camera.configure(config)
                self._check_rotation(camera)
                camera.start()
            except BaseException:  # SIGTERM's Terminate too: never leave it acquired
                self._release(camera)
                raise
        except SourceError:
            raise
        except Exception as exc:  # libcamera raises plain RuntimeError/OSError variants
            raise SourceError(f"{self.name} cannot be opened: {first_line(exc)}") from None
        self._camera = camera
        self._index = 0

    def _check_rotation(self, camera) -> None:
        """libcamera quietly drops a flip the sensor cannot do (picamera2 logs it at info
        level): say so, since upside-down people are never counted."""
        if self.rotation != 180:
            return
        applied = camera.camera_configuration().get("transform")
        if not (getattr(applied, "hflip", False) and getattr(applied, "vflip", False)):
            log.warning("%s cannot turn its picture 180 degrees (libcamera applied %s); "
                        "mount the camera the right way up and set [camera].rotation = 0", self.name, applied)

    def read(self) -> Frame | None:
        if self._camera is None:
            raise SourceError(f"{self.name} is not open")
        try:
            job = self._camera.capture_array("lores", wait=False)
            array = self._camera.wait(job, timeout=self.timeout_s)
        except Exception as exc:
            raise SourceError(f"{self.name} stopped delivering frames: {first_line(exc) or 'timeout'}") from None
        width = self.lores_size[0]
        if self.lores_format == "YUV420":
            image = np.ascontiguousarray(array[:, :width])
            frame = Frame(image, "YUV420", time.monotonic(), self._index)
        else:
            frame = Frame(np.ascontiguousarray(array[:, :width, :3]), "RGB", time.monotonic(), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._camera is not None:
            self._release(self._camera)
        self._camera = None

    def _release(self, camera) -> None:
        """stop() then close(), each tried on its own: a stop that fails (a camera gone from
        the bus) must not keep close() from giving the camera back to libcamera."""
        for step in (camera.stop, camera.close):
            try:
                step()
            except Exception as exc:
                log.warning("closing %s: %s", self.name, first_line(exc))


def _default_lores_format() -> str:
    try:
        model = Path("/proc/device-tree/model").read_text(errors="replace")
    except OSError:
        return "YUV420"
    return "RGB" if "Raspberry Pi 5" in model else "YUV420"


def make_source(spec: str, camera_config, realtime: bool = False, pixel_format: str = "RGB") -> FrameSource:
    """`camera`, `webcam` or a video file path -> its FrameSource."""
    if spec == "camera":
        return PiCameraSource(
            index=camera_config.index,
            main_size=(camera_config.width, camera_config.height),
            lores_size=(camera_config.lores_width, camera_config.lores_height),
            fps=camera_config.fps,
            lores_format=camera_config.lores_format,
            timeout_s=camera_config.frame_timeout_s,
            rotation=camera_config.rotation,
        )
    if spec == "webcam":
        return WebcamSource(camera_config.index, camera_config.width, camera_config.height, camera_config.fps,
                            camera_config.rotation)
    return VideoFileSource(spec, pixel_format=pixel_format, realtime=realtime)
