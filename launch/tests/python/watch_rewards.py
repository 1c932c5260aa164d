"""Independent ROS 2 peer for `rrl launch` with a simulated robot and a VLM
reward: an rclpy node that watches the robot's joint states, its rendered
front camera and the reward node's stamped estimates of those frames.
Prints one JSON line."""
import json
import sys
import time

import rclpy
from geometry_msgs.msg import Vector3Stamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("watcher")
    seen = {"joint_states": 0, "images": [], "estimates": []}
    node.create_subscription(JointState, f"/{namespace}/joint_states", lambda m: seen.__setitem__("joint_states", seen["joint_states"] + 1), qos_profile_sensor_data)
    node.create_subscription(Image, f"/{namespace}/front/image_raw", lambda m: seen["images"].append((m.header.stamp.sec, m.header.stamp.nanosec)), qos_profile_sensor_data)
    node.create_subscription(Vector3Stamped, f"/{namespace}/reward/estimate", lambda m: seen["estimates"].append((m.header.stamp.sec, m.header.stamp.nanosec, m.vector.x)), 50)
    end = time.time() + 25
    while time.time() < end and len(seen["estimates"]) < 3:
        rclpy.spin_once(node, timeout_sec=0.05)
    image_stamps = set(seen["images"])
    print(json.dumps({
        "joint_states": seen["joint_states"],
        "images": len(seen["images"]),
        "estimates": len(seen["estimates"]),
        "estimates_of_seen_frames": sum(1 for s in seen["estimates"] if (s[0], s[1]) in image_stamps),
        "progress": [s[2] for s in seen["estimates"]],
    }))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
