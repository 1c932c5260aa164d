"""Independent ROS 2 peer for `rrl reward-node`: an rclpy node that plays a
camera (sensor_msgs/Image, bgr8, the scene turning red over 10 frames at
5 Hz, each frame stamped) and the task publisher, and collects the node's
geometry_msgs/Vector3Stamped estimates. Prints one JSON line."""
import json
import sys
import time

import rclpy
from geometry_msgs.msg import Vector3Stamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
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
    # The task as a ROS parameter, set the way `ros2 param set` does.
    client = node.create_client(SetParameters, f"/{namespace}/reward_node/set_parameters")
    client.wait_for_service(timeout_sec=10)
    value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="stack the cube")
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name="task", value=value)]))
    rclpy.spin_until_future_complete(node, future, timeout_sec=10)
    set_ok = future.result() is not None and all(r.successful for r in future.result().results)
    stats = []
    node.create_subscription(String, f"/{namespace}/reward/stats", lambda m: stats.append(json.loads(m.data)), 10)
    end = time.time() + 5
    while time.time() < end and not (stats and stats[-1].get("task") == "stack the cube"):
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"sent": sent, "estimates": out, "task_parameter_set": set_ok, "task_after_set": stats[-1].get("task") if stats else None}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
