"""Peer for `rrl bench sim`: renders the gym-hil Panda scene's front and
wrist cameras offscreen with MuJoCo's own Python renderer (MUJOCO_GL=egl,
as a Python user would), one physics step between frame pairs, and prints
one JSON line with frames/s. The shadow map is set to the size rrl uses
(the scene's own 4096 halves Mesa's software renderer's frame rate).
Usage: panda_render.py SCENE_XML FRAMES SIZE SHADOW_MAP_SIZE"""
import json
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco  # noqa: E402


def main() -> int:
    scene, frames, size, shadow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    model = mujoco.MjModel.from_xml_path(scene)
    model.vis.quality.shadowsize = shadow
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = mujoco.Renderer(model, size, size)
    pixels = 0
    start = time.perf_counter()
    for _ in range(frames // 2):
        mujoco.mj_step(model, data)
        for camera in ("front", "handcam_rgb"):
            renderer.update_scene(data, camera=camera)
            pixels += int(renderer.render()[0, 0, 0])
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "mujoco-python", "frames": frames, "seconds": seconds, "frames_per_s": frames / seconds, "checksum": pixels}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
