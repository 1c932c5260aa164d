"""An emulated small car for tests (the far end of the topics, like a device
emulator): a unicycle whose speed and yaw rate follow the last
geometry_msgs/Twist on `/cmd_vel` (first-order lag, 0.1 s), publishing
nav_msgs/Odometry on `/odom` and sensor_msgs/Imu on `/imu/data` at 50 Hz.
SILENT_AFTER seconds after the first twist it stops publishing but keeps
listening; END_AFTER seconds after the first twist (or after 60 s without
any) it prints the last twist it received as JSON and exits.
Usage: twist_car.py SILENT_AFTER END_AFTER"""
import json
import math
import sys
import time

import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu


def main() -> int:
    rclpy.init()
    node = Node("emulated_twist_car")
    odom = node.create_publisher(Odometry, "/odom", qos_profile_sensor_data)
    imu = node.create_publisher(Imu, "/imu/data", qos_profile_sensor_data)
    car = {"x": 0.0, "y": 0.0, "yaw": 0.0, "v": 0.0, "w": 0.0}
    last = {"twist": None, "received": 0, "first": None}

    def on_twist(msg: Twist) -> None:
        last["twist"] = [msg.linear.x, msg.angular.z]
        last["received"] += 1
        if last["first"] is None:
            last["first"] = time.monotonic()

    node.create_subscription(Twist, "/cmd_vel", on_twist, 10)
    started = time.monotonic()
    dt = 0.02

    def tick() -> None:
        target = last["twist"] or [0.0, 0.0]
        car["v"] += (target[0] - car["v"]) * dt / 0.1
        car["w"] += (target[1] - car["w"]) * dt / 0.1
        car["yaw"] += car["w"] * dt
        car["x"] += car["v"] * math.cos(car["yaw"]) * dt
        car["y"] += car["v"] * math.sin(car["yaw"]) * dt
        if last["first"] is not None and time.monotonic() - last["first"] > float(sys.argv[1]):
            return
        stamp = node.get_clock().now().to_msg()
        message = Odometry()
        message.header.stamp = stamp
        message.header.frame_id = "odom"
        message.pose.pose.position.x = car["x"]
        message.pose.pose.position.y = car["y"]
        message.pose.pose.orientation.z = math.sin(car["yaw"] / 2)
        message.pose.pose.orientation.w = math.cos(car["yaw"] / 2)
        message.twist.twist.linear.x = car["v"]
        message.twist.twist.angular.z = car["w"]
        odom.publish(message)
        reading = Imu()
        reading.header.stamp = stamp
        reading.angular_velocity.z = car["w"]
        imu.publish(reading)

    node.create_timer(dt, tick)
    def over() -> bool:
        if last["first"] is None:
            return time.monotonic() - started > 60
        return time.monotonic() - last["first"] > float(sys.argv[2])

    while not over():
        rclpy.spin_once(node, timeout_sec=0.01)
    print(json.dumps({"last_twist": last["twist"], "received": last["received"], "yaw": car["yaw"], "x": car["x"], "y": car["y"]}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
