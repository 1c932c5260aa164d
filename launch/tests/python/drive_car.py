"""Independent ROS 2 peer for `rrl driver` on a car: an rclpy node reads the
car's joint states and front camera, commands 0.5 m/s forward through the
driver's gate, and checks the car got to that speed and that the camera's
images are rgb8 at the launch file's size with one of the known colours.
Prints one JSON line; exit 0 when all held.
Usage: drive_car.py NAMESPACE WIDTH HEIGHT"""
import json
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

KNOWN_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def main() -> int:
    namespace, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rclpy.init()
    node = Node("rrl_car_driver")
    latest = {"images": 0}

    def on_image(msg: Image) -> None:
        latest["image"] = msg
        latest["images"] += 1

    node.create_subscription(JointState, f"/{namespace}/joint_states", lambda m: latest.update(state=m), qos_profile_sensor_data)
    node.create_subscription(Image, f"/{namespace}/front/image_raw", on_image, qos_profile_sensor_data)
    commands = node.create_publisher(Float64MultiArray, f"/{namespace}/joint_commands", 10)
    deadline = time.monotonic() + 20
    while ("state" not in latest or "image" not in latest) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if "state" not in latest or "image" not in latest:
        print(json.dumps({"ok": False, "error": "no joint_states or no images", "seen": sorted(latest)}))
        return 1
    # Commands sent before discovery has matched the driver's subscription
    # are lost: wait for it, then command until the car is at speed (or 10 s).
    while commands.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    started = time.monotonic()
    while time.monotonic() < started + 10.0:
        commands.publish(Float64MultiArray(data=[0.5, 0.0]))
        rclpy.spin_once(node, timeout_sec=0.02)
        at_speed = abs(latest["state"].velocity[0] - 0.5) < 0.05 if latest["state"].velocity else False
        # At speed for a second, and the camera seen long enough to judge it.
        if at_speed and latest["images"] >= 20 and time.monotonic() > started + 1.0:
            break
    state, image = latest["state"], latest["image"]
    first_pixel = tuple(image.data[0:3])
    result = {
        "names": list(state.name),
        "velocity": list(state.velocity),
        "image": [image.encoding, image.width, image.height, image.step, len(image.data)],
        "first_pixel": first_pixel,
        "images": latest["images"],
    }
    result["ok"] = (
        list(state.name) == ["linear_x", "angular_z"]
        and abs(state.velocity[0] - 0.5) < 0.05
        and image.encoding == "rgb8"
        and (image.width, image.height, image.step) == (width, height, 3 * width)
        and len(image.data) == 3 * width * height
        and first_pixel in KNOWN_COLOURS
        and latest["images"] >= 20
    )
    print(json.dumps(result))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
