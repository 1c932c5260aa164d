"""Independent ROS 2 peer for a robot node (`rrl sim`, `rrl driver`):
commands the arm to stay where it stands (a command every rule passes)
and reads `safety/verdicts` until one names a reflex of the learned risk
critic, or 30 s pass. Prints one JSON line; exit 0 when a reflex was seen."""
import json
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("rrl_reflex_probe")
    latest = {}
    verdicts = []
    node.create_subscription(JointState, f"/{namespace}/joint_states", lambda m: latest.update(msg=m), qos_profile_sensor_data)
    node.create_subscription(String, f"/{namespace}/safety/verdicts", lambda m: verdicts.append(m.data), 50)
    commands = node.create_publisher(Float64MultiArray, f"/{namespace}/joint_commands", 10)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and not any("reflex" in v for v in verdicts):
        if "msg" in latest:
            commands.publish(Float64MultiArray(data=list(latest["msg"].position)))
        rclpy.spin_once(node, timeout_sec=0.02)
    reflexes = [v for v in verdicts if "reflex" in v]
    print(json.dumps({"reflex": bool(reflexes), "first_reflex": reflexes[:1], "verdicts": len(verdicts), "states": "msg" in latest}))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if reflexes else 1


if __name__ == "__main__":
    sys.exit(main())
