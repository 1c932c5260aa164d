"""Independent ROS 2 peer for `rrl teleop`: an rclpy node playing a human
with a gamepad. Pushes the stick along +x for 1.5 s (holding button 5, the
success marking, for its last 0.7 s), labels the episode a success with
button 2, pushes along -y for 1 s, then stops the session on the command
topic. Prints one JSON line."""
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
    node = Node("teleop_human")
    joy = node.create_publisher(Joy, "/spacenav/joy", 10)
    commands = node.create_publisher(String, f"/{namespace}/practice/command", 10)
    deadline = time.time() + 60
    while (joy.get_subscription_count() == 0 or commands.get_subscription_count() == 0) and time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)

    def push(axes, seconds, buttons=(0, 0)):
        end = time.time() + seconds
        while time.time() < end:
            joy.publish(Joy(axes=axes, buttons=list(buttons)))
            time.sleep(0.05)
        joy.publish(Joy(axes=[0.0] * 6, buttons=[0, 0]))

    push([0.7, 0.0, 0.0, 0.0, 0.0, 0.0], 0.8)
    push([0.7, 0.0, 0.0, 0.0, 0.0, 0.0], 0.7, buttons=(0, 0, 0, 0, 0, 1))
    time.sleep(0.7)
    # The success button: pressed, held a moment, released.
    for buttons in ([0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]):
        joy.publish(Joy(axes=[0.0] * 6, buttons=buttons))
        time.sleep(0.1)
    time.sleep(0.5)
    push([0.0, -0.6, 0.0, 0.0, 0.0, 0.0], 1.0)
    time.sleep(0.7)
    for _ in range(10):
        commands.publish(String(data="stop"))
        time.sleep(0.1)
    print(json.dumps({"ok": True}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
