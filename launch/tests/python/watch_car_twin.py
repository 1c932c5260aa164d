"""Independent ROS 2 peer for `rrl sim` serving the car twin as a car's
driver: an rclpy node reads its odometry, IMU and front camera, drives it
forward at 0.8 m/s with geometry_msgs/Twist for 1.5 s, and checks that the
odometry moved that way and that the camera's rgb8 images at the launch
file's size show a scene (not a blank frame) that changed as the car
drove. Prints one JSON line; exit 0 when all held.
Usage: watch_car_twin.py NAMESPACE WIDTH HEIGHT"""
import json
import sys
import time

import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, Imu


def spread(data: bytes) -> int:
    return max(data) - min(data)


def mean_abs_difference(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def main() -> int:
    namespace, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rclpy.init()
    node = Node("watch_car_twin")
    seen = {"images": 0, "imu": 0}

    def on_image(msg: Image) -> None:
        seen["image"] = msg
        seen["images"] += 1

    def on_imu(msg: Imu) -> None:
        seen["imu"] += 1

    node.create_subscription(Odometry, f"/{namespace}/odom", lambda m: seen.update(odom=m), qos_profile_sensor_data)
    node.create_subscription(Imu, f"/{namespace}/imu/data", on_imu, qos_profile_sensor_data)
    node.create_subscription(Image, f"/{namespace}/front/image_raw", on_image, qos_profile_sensor_data)
    twist = node.create_publisher(Twist, f"/{namespace}/cmd_vel", 10)
    deadline = time.monotonic() + 30
    while ("odom" not in seen or "image" not in seen) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if "odom" not in seen or "image" not in seen:
        print(json.dumps({"ok": False, "error": "no odometry or no images", "seen": sorted(seen)}))
        return 1
    while twist.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    before_image, before_x = bytes(seen["image"].data), seen["odom"].pose.pose.position.x
    started = time.monotonic()
    command = Twist()
    command.linear.x = 0.8
    while time.monotonic() < started + 1.5:
        twist.publish(command)
        rclpy.spin_once(node, timeout_sec=0.02)
    twist.publish(Twist())
    # The newest frame shows the car where it stopped (wait for one rendered after).
    frames_then = seen["images"]
    while seen["images"] < frames_then + 2 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    image, odom = seen["image"], seen["odom"]
    after = bytes(image.data)
    result = {
        "moved_m": odom.pose.pose.position.x - before_x,
        "speed": odom.twist.twist.linear.x,
        "image": [image.encoding, image.width, image.height, image.step, len(image.data)],
        "spread": spread(after),
        "changed": mean_abs_difference(before_image, after),
        "images": seen["images"],
        "imu": seen["imu"],
    }
    result["ok"] = (
        result["moved_m"] > 0.6
        and image.encoding == "rgb8"
        and (image.width, image.height, image.step) == (width, height, 3 * width)
        and len(after) == 3 * width * height
        and result["spread"] > 60
        and result["changed"] > 2.0
        and seen["imu"] > 50
    )
    print(json.dumps(result))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
