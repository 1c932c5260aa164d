"""The human of a pick practised over ROS 2, for tests (the far end of the
topics, like a device emulator): labels an episode a success on
`<ns>/practice/command` once the cube's pose on `<ns>/cube/pose` is lifted
LIFT metres above where it was put, and answers every human reset window
(`<ns>/practice/status` says "waiting for the scene reset (window N)"),
each once, by putting the cube back (`<ns>/scene/reset`, the simulator's
stand-in for a person's hands) and, once it has settled, saying so on
`<ns>/practice/reset_done`. Without a cube (no pose on `<ns>/cube/pose`)
it only closes the windows. Prints one line per label and per reset, and
"live <json>" for each message of the operator's live view
(`<ns>/practice/live`).
Usage: pick_human.py NAMESPACE SECONDS [LIFT]"""
import re
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from geometry_msgs.msg import PoseStamped
from std_msgs.msg import Empty, String


def main() -> int:
    namespace, seconds = sys.argv[1], float(sys.argv[2])
    lift = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    rclpy.init()
    node = Node("pick_human")
    command = node.create_publisher(String, f"{namespace}/practice/command", 10)
    scene_reset = node.create_publisher(Empty, f"{namespace}/scene/reset", 10)
    reset_done = node.create_publisher(Empty, f"{namespace}/practice/reset_done", 10)
    state = {"table_z": None, "labelled": True, "reset_at": None, "z": None, "answered": 0}

    def on_pose(msg: PoseStamped) -> None:
        z = msg.pose.position.z
        state["z"] = z
        if state["table_z"] is None:
            return
        if not state["labelled"] and z > state["table_z"] + lift:
            command.publish(String(data="success"))
            state["labelled"] = True
            print(f"label success z={z:.3f}", flush=True)

    def on_status(msg: String) -> None:
        window = re.match(r"waiting for the scene reset \(window (\d+)\)", msg.data)
        if window and int(window.group(1)) > state["answered"] and state["reset_at"] is None:
            state["answered"] = int(window.group(1))
            scene_reset.publish(Empty())
            state["reset_at"] = time.monotonic()

    def on_live(msg: String) -> None:
        print(f"live {msg.data}", flush=True)

    node.create_subscription(PoseStamped, f"{namespace}/cube/pose", on_pose, qos_profile_sensor_data)
    node.create_subscription(String, f"{namespace}/practice/live", on_live, 10)
    node.create_subscription(String, f"{namespace}/practice/status", on_status, 10)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.01)
        # The cube settles on the table (half a second of simulated physics), then the reset is done.
        if state["reset_at"] is not None and time.monotonic() - state["reset_at"] > 0.5:
            if state["z"] is not None:
                state["table_z"] = state["z"]
                state["labelled"] = False
            state["reset_at"] = None
            reset_done.publish(Empty())
            print(f"reset done window={state['answered']} table_z={state['table_z']}", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
