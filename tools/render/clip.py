"""render_clip: scenario -> frames -> H.264 mp4 + exact label npz."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import body as B
from . import motion as M
from .camera import Camera, fit_camera
from .raster import FrameBuffers
from .scene import Look, Room, draw_person

VIEWS = {"front": (0.0,), "oblique": (45.0, -45.0), "side": (90.0, -90.0), "side-left": (-90.0,),
         "side-right": (90.0,), "oblique-left": (-45.0,), "oblique-right": (45.0,)}

# Per-keypoint depth tolerance (m, for a 1.75 m person): a keypoint is visible when the
# nearest surface at its pixel is no more than this in front of the joint centre.
_VIS_TOL = np.array([0.05, 0.06, 0.09, 0.06, 0.09, 0.06, 0.05, 0.12, 0.12])  # head: the nose, on the face

_LUT_SIZE = 4096
_SRGB_LUT = (np.linspace(0, 1, _LUT_SIZE) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


def to_srgb(lin: np.ndarray) -> np.ndarray:
    return _SRGB_LUT[np.clip(lin * (_LUT_SIZE - 1), 0, _LUT_SIZE - 1).astype(np.int32)]


def view_azimuth(view: str, rng) -> float:
    """Camera azimuth in degrees: 0 in front of the person, +90 on their right, -90 on their left."""
    if view in VIEWS:
        options = VIEWS[view]
        base = options[int(rng.integers(len(options)))]
        return float(base + rng.uniform(-8.0, 8.0))
    try:
        return float(view)
    except ValueError:
        raise ValueError(f"unknown view {view!r}; choose from {sorted(VIEWS)} or an azimuth in degrees") from None


def _shadow_segments(joints: np.ndarray):
    J = B.J
    pairs = [("shoulder_l", "elbow_l"), ("elbow_l", "wrist_l"), ("shoulder_r", "elbow_r"), ("elbow_r", "wrist_r"),
             ("hip_l", "knee_l"), ("knee_l", "ankle_l"), ("hip_r", "knee_r"), ("knee_r", "ankle_r"),
             ("pelvis", "neck"), ("neck", "head"), ("ankle_l", "toe_l"), ("ankle_r", "toe_r")]
    radii = np.array([0.045, 0.035, 0.045, 0.035, 0.07, 0.05, 0.07, 0.05, 0.15, 0.08, 0.04, 0.04])
    a = np.stack([joints[J[p]] for p, _ in pairs])
    b = np.stack([joints[J[q]] for _, q in pairs])
    return a, b, radii


def _shadow_factor(fxz: np.ndarray, joints: np.ndarray, light: np.ndarray, k: float, strength: float) -> np.ndarray:
    """Multiplicative darkening (<= 1) of floor points fxz [N,2] under the body."""
    a, b, r = _shadow_segments(joints)
    r = r * k
    # project segment end points onto the floor along the light (soft, widening with height)
    shift = light[[0, 2]] / max(light[1], 0.2)
    pa = a[:, [0, 2]] - a[:, 1:2] * shift
    pb = b[:, [0, 2]] - b[:, 1:2] * shift
    ha, hb = a[:, 1], b[:, 1]
    d = pb - pa  # [S,2]
    l2 = np.maximum(np.einsum("ij,ij->i", d, d), 1e-9)
    ex = fxz[:, 0:1] - pa[:, 0]
    ez = fxz[:, 1:2] - pa[:, 1]
    t = np.clip((ex * d[:, 0] + ez * d[:, 1]) / l2, 0, 1)
    ex -= t * d[:, 0]
    ez -= t * d[:, 1]
    dist = np.sqrt(ex * ex + ez * ez)
    h = ha + t * (hb - ha)
    soft = r * 0.6 + 0.35 * h
    val = np.clip((r + soft - dist) / (2 * soft), 0, 1) * np.clip(1.2 - h, 0.2, 1.0)
    occ = val.max(axis=1)
    return 1.0 - strength * occ


def render_clip(path, scenario: str = "pushups", reps: int = 8, view: str = "side", tempo: float = 1.0,
                seed: int = 0, width: int = 320, height: int = 240, fps: float = 25.0,
                camera_height: float = 0.1, depth="full", pause_top: float = 0.0, pause_bottom: float = 0.0,
                get_up: bool = True, duration: float | None = None, sag: float = 0.0,
                person_height: float | None = None, zoom: float | None = None, hfov_deg: float = 62.2,
                noise: float | None = None, blur: float | None = None, crf: int = 20,
                knees: bool = False, rest_after: int = 0, rest_s: float = 3.0,
                motion_blur: int = 0, shutter: float = 0.5, flow: str | None = None,
                write_video: bool = True, frames_out: list | None = None, masks_out: list | None = None) -> dict:
    """Render one clip to `path` (mp4, H.264 yuv420p) and `path` with .npz (labels).

    Returns the labels dict (also saved): keypoints [T,9,3] float32 (x, y in 0..1, y down;
    visibility), visibility [T,9], fps, rep_top_times_s, reps, scenario, view.
    `frames_out`, if a list, receives every rendered RGB frame (uint8 [H,W,3]); `masks_out`
    receives each frame's person mask (bool [H,W]). `path` may be None with write_video=False.
    `motion_blur` = N > 1 averages N renders spread over `shutter` of the frame interval
    (N times slower; labels stay at the frame time, the centre of the exposure).
    """
    rng = np.random.default_rng([seed, 7])
    opts = M.Options(reps=reps if scenario == "pushups" else 0, tempo=tempo, depth=depth, pause_top=pause_top,
                     pause_bottom=pause_bottom, get_up=get_up, duration=duration, sag=sag, height=person_height,
                     knees=knees, rest_after=rest_after, rest_s=rest_s, flow=flow)
    subs = int(motion_blur) if motion_blur and int(motion_blur) > 1 else 0
    offsets = None
    if subs:
        offsets = np.linspace(-0.5, 0.5, subs) * shutter / fps
        offsets = np.concatenate([offsets[np.abs(offsets) > 1e-12], [0.0]])  # the frame time last
        subs = len(offsets)
    motion = M.build(scenario, opts, fps, seed, sub_offsets=offsets)
    T = motion.frames
    joints = motion.joints
    dims = motion.dims

    # camera: fit the whole clip's body from the chosen direction
    az = view_azimuth(view, rng)
    if motion.present.any():
        framed = motion.present.copy()
        span = motion.info.get("plank_span")
        if span is not None and camera_height < 0.3:
            # a floor-level appliance is aimed at the mat: frame the push-ups; the person
            # standing before and after may leave the top of the picture
            t = np.arange(T) / fps
            framed &= (t >= span[0]) & (t <= span[1])
        pts = joints[framed].reshape(-1, 3)
        pad = np.array([[0, 0.12 * dims.k, 0], [0, -0.0, 0]])
        pts = np.concatenate([pts, pts.max(0, keepdims=True) + pad[:1], pts.min(0, keepdims=True)])
    else:
        pts = np.array([[-0.2, 0.0, -0.3], [1.8, 0.6, 0.3]])
    if zoom is None:
        zoom = float(rng.uniform(1.0, 1.25))
    cam = fit_camera(pts, az, camera_height, width, height, hfov_deg, zoom=zoom, roll_deg=float(rng.normal(0, 1.5)))

    # appearance
    look = Look.random(rng)
    centre = pts.mean(0)
    room = Room.random(rng, (centre[0], centre[2]), cam.position[[0, 2]])
    room.furnish(rng, pts.min(0), pts.max(0), cam.position)
    la = rng.uniform(0, 2 * np.pi)
    light = np.array([0.6 * np.cos(la), 1.0, 0.6 * np.sin(la)])
    light /= np.linalg.norm(light)
    bg_lin, floor_xz = room.render(cam, light)
    gains = np.clip(rng.normal(1.0, 0.05, 3), 0.88, 1.12).astype(np.float32)
    exposure = float(rng.uniform(0.85, 1.2))
    # light colour: warm lamps to cool daylight (own stream so older seeds keep their look)
    warmth = float(np.random.default_rng([seed, 11]).uniform(-1.0, 1.0))
    light_colour = (1.0 + 0.06 * warmth, 0.97, 0.92 - 0.12 * warmth)
    bg_lin *= gains * exposure * (np.asarray(light_colour, np.float32) / 0.963)
    # lens shading (vignetting), applied to the background here and to the body below
    yy, xx = np.mgrid[0:height, 0:width]
    rr = ((xx + 0.5 - width / 2) ** 2 + (yy + 0.5 - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
    vignette = (1.0 - float(rng.uniform(0.1, 0.4)) * rr).astype(np.float32)
    bg_lin *= vignette[..., None]
    bg = to_srgb(bg_lin)
    light_cam = cam.dir_to_camera(light)
    up_cam = cam.dir_to_camera(np.array([0.0, 1.0, 0.0]))
    key = float(rng.uniform(0.6, 0.85))
    ambient = float(rng.uniform(0.35, 0.5))
    noise_sigma = float(rng.uniform(1.5, 4.0)) if noise is None else float(noise)
    blur_w = float(rng.uniform(0.12, 0.3)) if blur is None else float(blur)
    shadow_strength = float(rng.uniform(0.35, 0.6))
    noise_bank = rng.normal(0, noise_sigma, (4, height + 8, width + 8, 3)).astype(np.float32)
    floor_ok = np.isfinite(floor_xz[..., 0])

    fb = FrameBuffers(cam)
    kp = np.full((T, 9, 3), np.nan, np.float32)
    vis = np.zeros((T, 9), np.float32)
    tol = _VIS_TOL * dims.k * max(dims.girth, 1.0)

    container = stream = None
    if write_video:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        import av

        container = av.open(str(path), "w")
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # x264's macroblock tree rate control reads memory that depends on what was encoded
        # before in the process: the same frames came out as different files (and a borderline
        # rep counted or not) by the order clips were rendered in. Without it they are the same.
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}

    c = 1 - 2 * blur_w

    def blur(img):
        out = img.astype(np.float32)
        if blur_w > 0:
            out[1:-1] = out[1:-1] * c + (out[:-2] + out[2:]) * blur_w
            out[:, 1:-1] = out[:, 1:-1] * c + (out[:, :-2] + out[:, 2:]) * blur_w
        return out

    bg_blur = np.clip(blur(bg) + 0.5, 0, 255).astype(np.uint8)
    noise16 = np.round(noise_bank).astype(np.int16)
    buf16 = np.empty((height, width, 3), np.int16)

    def compose(jf, rt, rh):
        """Shadow and body over the raw background: (y0, y1, x0, x1, region uint8) or None."""
        foot = jf[:, [0, 2]]
        lo = foot.min(0) - 0.35
        hi = foot.max(0) + 0.35
        box = floor_ok & (floor_xz[..., 0] > lo[0]) & (floor_xz[..., 0] < hi[0]) & \
            (floor_xz[..., 1] > lo[1]) & (floor_xz[..., 1] < hi[1])
        sidx = np.nonzero(box)
        fb.reset()
        draw_person(fb, cam, jf, rt, rh, dims, look)
        # the region that changes: body box and shadow box, plus pixels for the blur
        x0, y0, x1, y1 = fb.x0, fb.y0, fb.x1, fb.y1
        if sidx[0].size:
            y0, y1 = min(y0, int(sidx[0].min())), max(y1, int(sidx[0].max()) + 1)
            x0, x1 = min(x0, int(sidx[1].min())), max(x1, int(sidx[1].max()) + 1)
        if x1 <= x0 or y1 <= y0:
            return None
        x0, y0 = max(x0 - 2, 0), max(y0 - 2, 0)
        x1, y1 = min(x1 + 2, width), min(y1 + 2, height)
        work = bg[y0:y1, x0:x1].copy()
        if sidx[0].size:
            fac = _shadow_factor(floor_xz[sidx], jf, light, dims.k, shadow_strength)
            sy, sx = sidx[0] - y0, sidx[1] - x0
            work[sy, sx] = (work[sy, sx] * (fac ** 0.45)[:, None]).astype(np.uint8)
        res = fb.shade(light_cam, up_cam, key=key, ambient=ambient, light_colour=light_colour)
        if res is not None:
            sl, mask, lit = res
            work[sl[0].start - y0:sl[0].stop - y0, sl[1].start - x0:sl[1].stop - x0][mask] = \
                to_srgb(lit * (gains * exposure) * vignette[sl][mask][:, None])
        return y0, y1, x0, x1, work

    try:
        for f in range(T):
            frame = bg_blur.copy()
            if motion.present[f] and subs:
                sj, st, sh = motion.info["sub"]
                acc = np.zeros((height, width, 3), np.float32)
                for si in range(subs):
                    img = bg.copy()
                    comp = compose(sj[si, f], st[si, f], sh[si, f])
                    if comp is not None:
                        y0, y1, x0, x1, work = comp
                        img[y0:y1, x0:x1] = work
                    acc += img
                frame = np.clip(blur(acc * (1.0 / subs)) + 0.5, 0, 255).astype(np.uint8)
            elif motion.present[f]:
                comp = compose(joints[f], motion.r_trunk[f], motion.r_head[f])
                if comp is not None:
                    y0, y1, x0, x1, work = comp
                    wb = blur(work)
                    iy0, ix0 = (1 if y0 > 0 else 0), (1 if x0 > 0 else 0)
                    iy1, ix1 = (work.shape[0] - 1 if y1 < height else work.shape[0]), \
                        (work.shape[1] - 1 if x1 < width else work.shape[1])
                    frame[y0 + iy0:y0 + iy1, x0 + ix0:x0 + ix1] = np.clip(wb[iy0:iy1, ix0:ix1] + 0.5, 0, 255)
            if motion.present[f]:
                jf = joints[f]
                # labels: projection + in-frame + depth test against the drawn body
                pc = cam.to_camera(jf[list(B.KEYPOINT_JOINTS)])
                uv = cam.project_camera(pc)
                kp[f, :, 0] = uv[:, 0] / width
                kp[f, :, 1] = uv[:, 1] / height
                ui = np.floor(uv).astype(int)
                inside = (pc[:, 2] > 0.05) & (ui[:, 0] >= 0) & (ui[:, 0] < width) & (ui[:, 1] >= 0) & (ui[:, 1] < height)
                for k in np.nonzero(inside)[0]:
                    x, y = ui[k]
                    zz = fb.z[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
                    vis[f, k] = float(np.max(zz) >= pc[k, 2] - tol[k])
            if masks_out is not None:
                masks_out.append(np.isfinite(fb.z) if motion.present[f] else np.zeros((height, width), bool))
            # sensor noise
            nb = noise16[f % 4]
            oy, ox = (f * 3) % 8, (f * 5) % 8
            np.add(frame, nb[oy:oy + height, ox:ox + width], out=buf16)
            np.clip(buf16, 0, 255, out=buf16)
            out = buf16.astype(np.uint8)
            if frames_out is not None:
                frames_out.append(out)
            if container is not None:
                import av

                vf = av.VideoFrame.from_ndarray(out, format="rgb24")
                for packet in stream.encode(vf):
                    container.mux(packet)
        if container is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        if container is not None:
            container.close()

    kp[:, :, 2] = vis
    labels = dict(
        keypoints=kp,
        visibility=vis.copy(),
        fps=np.float32(fps),
        rep_top_times_s=np.asarray(motion.rep_top_times, np.float64),
        reps=np.int64(len(motion.rep_top_times)),
        scenario=np.str_(scenario),
        view=np.str_(view),
        azimuth_deg=np.float32(az),
        camera_height=np.float32(camera_height),
        seed=np.int64(seed),
        width=np.int64(width),
        height=np.int64(height),
        rep_depths=np.asarray(motion.info.get("rep_depths", []), np.float32),
        rep_bottom_times_s=np.asarray(motion.info.get("rep_bottom_times", []), np.float64),
    )
    if write_video:
        np.savez_compressed(os.fspath(Path(path).with_suffix(".npz")), **labels)
    return labels
