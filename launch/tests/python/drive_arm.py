"""Independent ROS 2 peer for `rrl driver`: an rclpy node reads the arm's
joint states, commands the first joint 0.2 rad away and checks it got
there, and reads the node's parameters (robot kind, joints, rate). Prints one JSON line; exit 0 when it did.
Usage: drive_arm.py NAMESPACE"""
import json
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from rcl_interfaces.srv import GetParameters
from std_msgs.msg import Float64MultiArray


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("rrl_arm_driver")
    latest = {}
    node.create_subscription(JointState, f"/{namespace}/joint_states", lambda m: latest.update(msg=m), qos_profile_sensor_data)
    commands = node.create_publisher(Float64MultiArray, f"/{namespace}/joint_commands", 10)
    deadline = time.monotonic() + 20
    while "msg" not in latest and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if "msg" not in latest:
        print(json.dumps({"ok": False, "error": "no joint_states"}))
        return 1
    start = list(latest["msg"].position)
    goal = list(start)
    goal[0] += 0.2
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        commands.publish(Float64MultiArray(data=goal))
        rclpy.spin_once(node, timeout_sec=0.02)
    reached = list(latest["msg"].position)
    result = {"names": list(latest["msg"].name), "start": start, "reached": reached}
    # The node's read-only parameters describe the robot.
    client = node.create_client(GetParameters, f"/{namespace}/servo_arm/get_parameters")
    client.wait_for_service(timeout_sec=10)
    future = client.call_async(GetParameters.Request(names=["robot", "joints", "control_rate_hz"]))
    rclpy.spin_until_future_complete(node, future, timeout_sec=10)
    values = future.result().values if future.result() else []
    result["parameters"] = [values[0].string_value, list(values[1].string_array_value), values[2].double_value] if len(values) == 3 else None
    result["ok"] = (
        abs(reached[0] - goal[0]) < 0.01
        and all(abs(a - b) < 0.01 for a, b in zip(reached[1:], start[1:]))
        and result["parameters"] is not None
        and result["parameters"][0] == "SerialArm"
        and result["parameters"][1] == list(latest["msg"].name)
        and result["parameters"][2] > 0
    )
    print(json.dumps(result))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
