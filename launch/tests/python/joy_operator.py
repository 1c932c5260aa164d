"""Independent ROS 2 peer for `rrl practice --operator joy`: an rclpy node
playing the human with a SpaceMouse. It waits until practice listens, holds
the puck pushed along +x for 2 s (sensor_msgs/Joy on /spacenav/joy), lets go,
then sends `stop` on /<namespace>/practice/command. Prints one JSON line."""
import json
import sys
import time

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import String


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("spacemouse_human")
    joy = node.create_publisher(Joy, "/spacenav/joy", 10)
    commands = node.create_publisher(String, f"/{namespace}/practice/command", 10)
    deadline = time.time() + 60
    while (joy.get_subscription_count() == 0 or commands.get_subscription_count() == 0) and time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if joy.get_subscription_count() == 0:
        print(json.dumps({"ok": False, "why": "practice never subscribed to /spacenav/joy"}))
        return 1
    time.sleep(1.0)
    sent = 0
    end = time.time() + 2.0
    while time.time() < end:
        joy.publish(Joy(axes=[0.8, 0.0, 0.0, 0.0, 0.0, 0.0], buttons=[0, 0]))
        sent += 1
        time.sleep(0.05)
    joy.publish(Joy(axes=[0.0] * 6, buttons=[0, 0]))
    time.sleep(1.0)
    for _ in range(20):
        commands.publish(String(data="stop"))
        time.sleep(0.1)
    print(json.dumps({"ok": True, "joy_messages": sent}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
