"""Independent ROS 2 peer for `rrl reward-node`: an rclpy node that plays a
camera (sensor_msgs/Image, bgr8, the scene turning red over 10 frames at
5 Hz, each frame stamped) and the task publisher, and collects the node's
geometry_msgs/Vector3Stamped estimates. Prints one JSON line."""
import json
import sys
import time

import rclpy
from geometry_msgs.msg import Vector3Stamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("camera_and_task")
    got = []
    node.create_subscription(Vector3Stamped, f"/{namespace}/reward/estimate", lambda m: got.append(m), 50)
    images = node.create_publisher(Image, f"/{namespace}/front/image_raw", qos_profile_sensor_data)
    task = node.create_publisher(String, f"/{namespace}/reward/task", 10)
    deadline = time.time() + 60
    while (images.get_subscription_count() == 0 or task.get_subscription_count() == 0) and time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)
    task.publish(String(data="make the scene red"))
    for _ in range(10):
        rclpy.spin_once(node, timeout_sec=0.02)
    sent = []
    for i in range(10):
        red = min(255, i * 28)
        w, h = 16, 12
        msg = Image(height=h, width=w, encoding="bgr8", step=3 * w, data=bytes([30, 90, red] * (w * h)))
        msg.header.stamp.sec = 100 + i
        msg.header.stamp.nanosec = 5000
        msg.header.frame_id = "front"
        images.publish(msg)
        sent.append(100 + i)
        end = time.time() + 0.2
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
    end = time.time() + 5
    while time.time() < end and (not got or got[-1].header.stamp.sec != sent[-1]):
        rclpy.spin_once(node, timeout_sec=0.05)
    out = [{"sec": m.header.stamp.sec, "nanosec": m.header.stamp.nanosec, "progress": m.vector.x, "reward": m.vector.y, "done": m.vector.z} for m in got]
    print(json.dumps({"sent": sent, "estimates": out}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
