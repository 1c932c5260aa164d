"""Independent peer for the operational-space controller: gym-hil's own
`opspace` on gym-hil's Panda scene, for the states and targets in a JSON
file. Writes the torques (gravity compensation included, as gym-hil
commands them) next to each case.

usage: opspace_peer.py CASES.json OUT.json
"""
import json
import sys
from pathlib import Path

import importlib

import gym_hil
import mujoco
import numpy as np

# The package re-exports the function under the module's name.
opspace_module = importlib.import_module("gym_hil.controllers.opspace")
ARM_JOINTS = [f"joint{i}" for i in range(1, 8)]


class _DataWithQM:
    """gym-hil's opspace reads `data.qM` and calls `mj_fullM(m, dst, qM)`;
    MuJoCo 3.17 takes `mj_fullM(m, d, dst)` and has no `qM`. This adapter
    lets the peer's own arithmetic run unchanged on the installed MuJoCo."""

    def __init__(self, data):
        self._data = data
        self.qM = data

    def __getattr__(self, name):
        return getattr(self._data, name)


class _MujocoOfGymHilsDay:
    def __getattr__(self, name):
        return getattr(mujoco, name)

    @staticmethod
    def mj_jacSite(model, data, jacp, jacr, site):
        mujoco.mj_jacSite(model, data._data, jacp, jacr, site)

    @staticmethod
    def mj_fullM(model, dst, data):
        mujoco.mj_fullM(model, data, dst)


opspace_module.mujoco = _MujocoOfGymHilsDay()


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    scene = Path(gym_hil.__file__).parent / "assets" / "scene.xml"
    model = mujoco.MjModel.from_xml_path(str(scene))
    data = mujoco.MjData(model)
    dof_ids = np.array([model.joint(name).dofadr[0] for name in ARM_JOINTS])
    site = model.site("pinch").id
    out = []
    for case in cases:
        data.qpos[:] = case["qpos"]
        data.qvel[:] = case["qvel"]
        mujoco.mj_forward(model, data)
        tau = opspace_module.opspace(
            model=model,
            data=_DataWithQM(data),
            site_id=site,
            dof_ids=dof_ids,
            pos=np.array(case["position"]),
            ori=np.array(case["orientation"]).reshape(3, 3),
            joint=np.array(case["rest"]),
            gravity_comp=True,
        )
        out.append([float(t) for t in tau])
    Path(sys.argv[2]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
