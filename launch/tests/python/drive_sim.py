"""Independent ROS 2 peer for `rrl sim`: an rclpy node that reads the
simulated Panda's joint states, /clock and both rendered cameras, commands
joint1 0.3 rad away, checks the arm got there, then sends a NaN command and
checks the arm holds. Prints one JSON line; exit 0 when every check passed."""
import json
import math
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("rrl_sim_driver")
    latest = {}
    clock = []
    verdicts = []
    node.create_subscription(JointState, f"/{namespace}/joint_states", lambda m: latest.update(msg=m), qos_profile_sensor_data)
    node.create_subscription(Clock, "/clock", lambda m: clock.append(m.clock.sec + m.clock.nanosec * 1e-9), 10)
    node.create_subscription(String, f"/{namespace}/safety/verdicts", lambda m: verdicts.append(m.data), 50)
    commands = node.create_publisher(Float64MultiArray, f"/{namespace}/joint_commands", 10)
    images = {"front": [], "wrist": []}
    for camera in images:
        node.create_subscription(Image, f"/{namespace}/{camera}/image_raw", lambda m, c=camera: images[c].append(m), qos_profile_sensor_data)

    def spin_for(seconds, each=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if each:
                each()
            rclpy.spin_once(node, timeout_sec=0.02)

    result = {"ok": False}
    spin_for(0.0)
    deadline = time.monotonic() + 20
    while "msg" not in latest and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if "msg" not in latest:
        print(json.dumps({"ok": False, "error": "no joint_states"}))
        return 1
    start = list(latest["msg"].position)
    result["names"] = list(latest["msg"].name)
    goal = list(start)
    goal[0] += 0.3
    spin_for(3.0, lambda: commands.publish(Float64MultiArray(data=goal)))
    reached = list(latest["msg"].position)
    result["moved"] = reached[0] - start[0]
    bad = list(goal)
    bad[2] = float("nan")
    spin_for(0.5, lambda: commands.publish(Float64MultiArray(data=bad)))
    before = list(latest["msg"].position)
    spin_for(1.0, lambda: commands.publish(Float64MultiArray(data=[g + 0.5 for g in bad])))
    after = list(latest["msg"].position)
    result["drift_while_nan"] = max(abs(a - b) for a, b in zip(after, before))
    result["clock_advancing"] = len(clock) > 10 and clock[-1] > clock[0]
    result["nan_hold_reported"] = any("NonFiniteCommand" in v for v in verdicts)
    # Frames come as fast as software rendering manages: wait for three of
    # each camera (an event, with a generous bound), not a fixed window.
    deadline = time.monotonic() + 20
    while min(len(images["front"]), len(images["wrist"])) < 3 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    front = images["front"]
    result["front_frames"] = len(front)
    result["wrist_frames"] = len(images["wrist"])
    result["images_ok"] = (
        # Software rendering on a small VM manages a few frames/s per camera.
        len(front) >= 3
        and len(images["wrist"]) >= 3
        and all(m.width == 128 and m.height == 128 and m.encoding == "rgb8" and len(m.data) == 128 * 128 * 3 for m in front[-3:])
        and max(front[-1].data) - min(front[-1].data) > 50
        and (front[-1].header.stamp.sec, front[-1].header.stamp.nanosec) > (front[0].header.stamp.sec, front[0].header.stamp.nanosec)
        and bytes(images["wrist"][-1].data) != bytes(front[-1].data)
    )
    result["ok"] = (
        result["names"][0] == "joint1"
        and abs(result["moved"] - 0.3) < 0.03
        and result["drift_while_nan"] < 0.01
        and result["clock_advancing"]
        and result["nan_hold_reported"]
        and result["images_ok"]
    )
    print(json.dumps(result))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
